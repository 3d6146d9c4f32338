//! Invoking a function through the local Lambda invoke API with a sample API Gateway request.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// The caller an API Gateway JWT authorizer would have vouched for.
#[derive(Debug, Clone)]
pub struct Identity {
    pub subject: &'static str,
    pub role: &'static str,
    pub tenant: Option<&'static str>,
}

#[derive(Debug)]
pub struct Functions {
    http: reqwest::Client,
    invoke_url: String,
    events_dir: PathBuf,
}

/// A function's answer, as API Gateway would return it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub replayed: bool,
}

impl Functions {
    pub fn new(invoke_url: &str, events_dir: &Path) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap_or_default();
        Self {
            http,
            invoke_url: invoke_url.trim_end_matches('/').to_owned(),
            events_dir: events_dir.to_owned(),
        }
    }

    /// Loads `events/<sample>.json`, addresses it to `who` with `path` parameters and `body`,
    /// and invokes the function that serves it.
    pub async fn call(
        &self,
        sample: &str,
        who: &Identity,
        path: &[(&str, &str)],
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let (function, _) = sample
            .split_once('/')
            .context("samples are <function>/<name>")?;
        let file = self.events_dir.join(format!("{sample}.json"));
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let mut event: Value = serde_json::from_str(&text)?;
        let claims = &mut event["requestContext"]["authorizer"]["jwt"]["claims"];
        claims["sub"] = json!(who.subject);
        claims["herald:role"] = json!(who.role);
        match who.tenant {
            Some(t) => claims["herald:tenant"] = json!(t),
            None => {
                if let Some(map) = claims.as_object_mut() {
                    map.remove("herald:tenant");
                }
            }
        }
        let mut raw_path = event["routeKey"]
            .as_str()
            .unwrap_or_default()
            .split_once(' ')
            .map(|(_, p)| p.to_owned())
            .unwrap_or_default();
        for (name, value) in path {
            event["pathParameters"][*name] = json!(value);
            raw_path = raw_path.replace(&format!("{{{name}}}"), value);
        }
        event["rawPath"] = json!(raw_path);
        event["requestContext"]["http"]["path"] = json!(raw_path);
        event["requestContext"]["requestId"] = json!(format!(
            "demo-{}",
            std::process::id() as u64 * 1000 + rand_suffix()
        ));
        if let Some(body) = body {
            event["body"] = json!(body.to_string());
        }
        if let Some(key) = idempotency_key {
            event["headers"]["idempotency-key"] = json!(key);
        }
        let url = format!(
            "{}/2015-03-31/functions/{function}/invocations",
            self.invoke_url
        );
        let response = self
            .http
            .post(&url)
            .json(&event)
            .send()
            .await
            .with_context(|| format!("invoking {function}"))?;
        if !response.status().is_success() {
            bail!(
                "{function} failed to run: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        let result: Value = response.json().await?;
        let status = result["statusCode"].as_u64().unwrap_or_default() as u16;
        let body = result["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        let replayed = result["headers"]["idempotent-replayed"].as_str() == Some("true");
        Ok(Answer {
            status,
            body,
            replayed,
        })
    }
}

impl Functions {
    /// [`Functions::call`], insisting on `status`.
    pub async fn expect(
        &self,
        status: u16,
        sample: &str,
        who: &Identity,
        path: &[(&str, &str)],
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let answer = self.call(sample, who, path, body, idempotency_key).await?;
        if answer.status != status {
            bail!(
                "{sample}: expected {status}, got {} {}",
                answer.status,
                answer.body
            );
        }
        Ok(answer)
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
