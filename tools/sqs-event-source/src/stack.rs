//! The local emulator stack as `scripts/stack.py up` describes it in `stack.json`: its
//! endpoint, region, credentials and the per-channel queue map.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Stack {
    pub endpoint: String,
    pub region: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Channel -> its dispatch queue (from the SNS subscriptions' `channel` filters), plus
    /// other consumed queues under their consumer's binary (`status-webhooks`).
    #[serde(default)]
    pub queues: BTreeMap<String, Queue>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Queue {
    pub url: String,
    pub arn: String,
    /// The binary of the function consuming the queue in the template, if any.
    #[serde(default)]
    pub binary: Option<String>,
}

impl Stack {
    pub fn load(path: &Path) -> anyhow::Result<Stack> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading {} (written by scripts/stack.py up)",
                path.display()
            )
        })?;
        let stack: Stack =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if stack.queues.is_empty() {
            bail!(
                "{} lists no channel queues; is it from an up-to-date scripts/stack.py?",
                path.display()
            );
        }
        Ok(stack)
    }

    /// The emulator's dummy credentials (`testing` unless stack.json says otherwise).
    pub fn credentials(&self) -> aws_sdk_sqs::config::Credentials {
        let get = |key: &str| {
            self.env
                .get(key)
                .cloned()
                .unwrap_or_else(|| "testing".to_owned())
        };
        aws_sdk_sqs::config::Credentials::new(
            get("AWS_ACCESS_KEY_ID"),
            get("AWS_SECRET_ACCESS_KEY"),
            None,
            None,
            "stack.json",
        )
    }

    pub async fn sqs_client(&self) -> aws_sdk_sqs::Client {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(self.region.clone()))
            .credentials_provider(self.credentials())
            .load()
            .await;
        aws_sdk_sqs::Client::new(&config)
    }
}
