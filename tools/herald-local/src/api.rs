//! Calling Herald's HTTP API as a front end does: through the local gateway (API Gateway's routes
//! and JWT authorizer), each caller with a bearer token from the development issuer.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use reqwest::Method;
use serde_json::Value;

/// Someone calling the API: the claims their token carries.
#[derive(Debug, Clone)]
pub struct Identity {
    pub subject: &'static str,
    pub role: &'static str,
    pub tenant: Option<&'static str>,
}

/// The API at the local gateway, with a token for each caller signed in.
#[derive(Debug)]
pub struct Api {
    http: reqwest::Client,
    base_url: String,
    tokens: BTreeMap<&'static str, String>,
}

/// An answer, as the gateway returned it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub replayed: bool,
}

impl Api {
    /// The gateway described by `gateway_state` (the JSON line it printed), with a token for
    /// each of `callers` minted by `herald dev-token` (the `herald` binary at `herald_cli`).
    pub fn sign_in(
        gateway_state: &Path,
        herald_cli: &Path,
        callers: &[&Identity],
    ) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(gateway_state)
            .with_context(|| format!("reading {}", gateway_state.display()))?;
        let gateway: Value = serde_json::from_str(&text).context("the gateway's state")?;
        // The API's URL, its stage included (`http://127.0.0.1:PORT/v1`); route paths follow.
        let base_url = gateway["api_url"]
            .as_str()
            .context("the gateway's state has no api_url")?
            .trim_end_matches('/')
            .to_owned();
        let mut tokens = BTreeMap::new();
        for who in callers {
            tokens.insert(who.subject, mint(herald_cli, gateway_state, who)?);
        }
        // Above API Gateway's 30 s: the gateway waits as long as it was told to, and the first
        // call to each function waits for `cargo lambda watch` to start it.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(150))
            .build()
            .context("HTTP client")?;
        Ok(Self {
            http,
            base_url,
            tokens,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A request from `who` to `path` (e.g. `/tenant/brand`), to add a body or key to.
    pub fn request<'a>(&'a self, who: &'a Identity, method: Method, path: &str) -> Call<'a> {
        Call {
            api: self,
            who,
            method,
            path: path.to_owned(),
            body: None,
            idempotency_key: None,
        }
    }

    pub fn get<'a>(&'a self, who: &'a Identity, path: &str) -> Call<'a> {
        self.request(who, Method::GET, path)
    }

    pub fn post<'a>(&'a self, who: &'a Identity, path: &str) -> Call<'a> {
        self.request(who, Method::POST, path)
    }

    pub fn put<'a>(&'a self, who: &'a Identity, path: &str) -> Call<'a> {
        self.request(who, Method::PUT, path)
    }
}

/// One API request being built.
#[derive(Debug)]
pub struct Call<'a> {
    api: &'a Api,
    who: &'a Identity,
    method: Method,
    path: String,
    body: Option<Value>,
    idempotency_key: Option<String>,
}

impl Call<'_> {
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    pub fn idempotency_key(mut self, key: &str) -> Self {
        self.idempotency_key = Some(key.to_owned());
        self
    }

    pub async fn send(self) -> anyhow::Result<Answer> {
        let what = format!("{} {}", self.method, self.path);
        let token = self
            .api
            .tokens
            .get(self.who.subject)
            .with_context(|| format!("{what}: no token for {}", self.who.subject))?;
        let mut request = self
            .api
            .http
            .request(self.method, format!("{}{}", self.api.base_url, self.path))
            .bearer_auth(token);
        if let Some(body) = &self.body {
            request = request.json(body);
        }
        if let Some(key) = &self.idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.with_context(|| what.clone())?;
        let status = response.status().as_u16();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v.as_bytes() == b"true");
        let text = response.text().await.with_context(|| what.clone())?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            body,
            replayed,
        })
    }

    /// [`Call::send`], insisting on `status`.
    pub async fn expect(self, status: u16) -> anyhow::Result<Answer> {
        let what = format!("{} {} as {}", self.method, self.path, self.who.subject);
        let answer = self.send().await?;
        if answer.status != status {
            bail!(
                "{what}: expected {status}, got {} {}",
                answer.status,
                answer.body
            );
        }
        Ok(answer)
    }
}

/// A token for `who`, as a developer gets one: `herald dev-token`.
fn mint(herald_cli: &Path, gateway_state: &Path, who: &Identity) -> anyhow::Result<String> {
    let mut command = Command::new(herald_cli);
    command
        .arg("dev-token")
        .args(["--role", who.role, "--sub", who.subject, "--ttl", "1h"])
        .arg("--gateway-state")
        .arg(gateway_state);
    if let Some(tenant) = who.tenant {
        command.args(["--tenant", tenant]);
    }
    let output = command
        .output()
        .with_context(|| format!("running {} dev-token", herald_cli.display()))?;
    if !output.status.success() {
        bail!(
            "herald dev-token for {}: {}",
            who.subject,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let token = String::from_utf8(output.stdout)
        .context("herald dev-token printed no text")?
        .trim()
        .to_owned();
    if token.is_empty() {
        bail!("herald dev-token printed no token for {}", who.subject);
    }
    Ok(token)
}
