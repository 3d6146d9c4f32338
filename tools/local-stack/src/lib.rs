//! Herald's local AWS stack and SMTP server, started from Rust: the emulator provisioned from
//! `infra/template.yaml` by `scripts/stack.py`, and the real SMTP server of
//! `scripts/smtp_server.py`, both from the project's `.venv` (`scripts/toolchain.sh`), on free
//! 127.0.0.1 ports, and both exiting with the process that started them.

pub mod lifetime;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, ensure};
use serde_json::Value;

/// The repository root (this crate lives in `tools/local-stack`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> anyhow::Result<PathBuf> {
    let python = repo_root().join(".venv/bin/python");
    ensure!(
        python.exists(),
        "the project toolchain is missing: run scripts/toolchain.sh"
    );
    Ok(python)
}

fn state_dir(kind: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("herald-{kind}-{}-{n}", std::process::id()))
}

/// A running emulator stack, as `stack.json` describes it (see infra/README.md).
#[derive(Debug, Clone)]
pub struct Stack {
    pub endpoint: String,
    /// What the template gives the functions, plus `AWS_ENDPOINT_URL`, region and credentials.
    pub env: HashMap<String, String>,
    /// Per channel: `url`, `arn`, `dlq_url`, `max_receive_count`...
    pub queues: Value,
    /// The whole `stack.json`.
    pub info: Value,
    /// Where `stack.json` is (tools such as sqs-event-source read it).
    pub stack_json: PathBuf,
}

impl Stack {
    /// Starts an emulator on a free port and provisions it from the template (~2 s).
    pub fn start() -> anyhow::Result<Stack> {
        Self::start_with(&[])
    }

    /// Like [`Stack::start`], with template parameters (`Key=Value`).
    pub fn start_with(params: &[String]) -> anyhow::Result<Stack> {
        let state = state_dir("stack");
        let mut command = Command::new(python()?);
        command
            .arg(repo_root().join("scripts/stack.py"))
            .args(["up", "--state-dir"])
            .arg(&state)
            .args(["--exit-with-parent", &std::process::id().to_string()]);
        for p in params {
            command.args(["--param", p]);
        }
        let out = command
            .stderr(Stdio::inherit())
            .output()
            .context("running scripts/stack.py")?;
        ensure!(out.status.success(), "scripts/stack.py up failed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let info: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .context("stack.json on stdout's last line")?;
        let env = info["env"]
            .as_object()
            .context("env in stack.json")?
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        Ok(Stack {
            endpoint: info["endpoint"].as_str().context("endpoint")?.to_owned(),
            env,
            queues: info["queues"].clone(),
            info,
            stack_json: state.join("stack.json"),
        })
    }

    /// A value of the functions' environment.
    pub fn var(&self, name: &str) -> anyhow::Result<String> {
        self.env
            .get(name)
            .cloned()
            .with_context(|| format!("{name} is not in the stack's environment"))
    }

    /// A field of a channel's queue entry (`url`, `arn`, `dlq_url`...).
    pub fn queue(&self, channel: &str, field: &str) -> anyhow::Result<String> {
        self.queues[channel][field]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no {field} for the {channel} queue"))
    }

    /// An SDK configuration pointed at the emulator, with its dummy credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(
                self.env
                    .get("AWS_REGION")
                    .cloned()
                    .unwrap_or_else(|| "eu-west-1".into()),
            ))
            .credentials_provider(aws_credential_types::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "local-stack",
            ))
            .load()
            .await
    }
}

/// A real SMTP server with AUTH PLAIN/LOGIN (no TLS, loopback only) spooling what it accepts.
#[derive(Debug)]
pub struct SmtpServer {
    pub port: u16,
    pub spool: PathBuf,
    _child: Mutex<Child>,
}

impl SmtpServer {
    /// Starts the server for `user`/`password`; `extra` are further `smtp_server.py` options.
    pub fn start(user: &str, password: &str, extra: &[&str]) -> anyhow::Result<SmtpServer> {
        let spool = state_dir("smtp").with_extension("jsonl");
        let mut child = Command::new(python()?)
            .arg(repo_root().join("scripts/smtp_server.py"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--user",
                user,
                "--password",
                password,
                "--spool",
            ])
            .arg(&spool)
            .args(extra)
            .args(["--exit-with-parent", &std::process::id().to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting scripts/smtp_server.py")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
        let info: Value = serde_json::from_str(&line).context("the SMTP server's JSON line")?;
        let port = info["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .context("port")?;
        Ok(SmtpServer {
            port,
            spool,
            _child: Mutex::new(child),
        })
    }

    /// Every message accepted so far, as spooled JSON lines.
    pub fn spooled(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.spool)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}
