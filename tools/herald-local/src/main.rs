//! `herald-local`: drives Herald's functions as they run locally under `cargo lambda watch`.
//!
//! `herald-local demo` walks the main job end to end over the HTTP API at the local gateway,
//! each caller with a token from `herald dev-token`, and prints what happens; `herald-local
//! load --messages N` measures the send → fan-out → dispatch path in-process, `herald-local load
//! --batch-size N --batches K` the cost of one batch send request; `herald-local audit-load`
//! measures audit appends and verification.

mod api;
mod audit_load;
mod demo;
mod load;

use anyhow::{Context as _, bail};

const USAGE: &str =
    "usage: herald-local demo --gateway-state FILE --herald-cli PATH --invoke-url URL \
--standins-url URL --smtp-port PORT --smtp-user USER --smtp-password PASSWORD --smtp-spool FILE
       herald-local load --messages N [--events-dir DIR]
       herald-local load --batch-size N [--batches K] [--events-dir DIR]
       herald-local audit-load --appends N [--concurrency C] [--verify-entries M]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        bail!(USAGE)
    };
    let option = |name: &str| -> anyhow::Result<String> {
        rest.iter()
            .position(|a| a == name)
            .and_then(|i| rest.get(i + 1))
            .cloned()
            .with_context(|| format!("missing {name}\n{USAGE}"))
    };
    match command.as_str() {
        "demo" => {
            let setup = demo::Setup {
                gateway_state: option("--gateway-state")?.into(),
                herald_cli: option("--herald-cli")?.into(),
                invoke_url: option("--invoke-url")?,
                standins_url: option("--standins-url")?,
                smtp_port: option("--smtp-port")?.parse().context("--smtp-port")?,
                smtp_user: option("--smtp-user")?,
                smtp_password: option("--smtp-password")?,
                smtp_spool: option("--smtp-spool")?.into(),
            };
            demo::run(setup).await
        }
        "load" => {
            let events_dir: std::path::PathBuf = option("--events-dir")
                .unwrap_or_else(|_| "events".to_owned())
                .into();
            if let Ok(size) = option("--batch-size") {
                let batches = option("--batches")
                    .map_or(Ok(5), |k| k.parse())
                    .context("--batches")?;
                return load::run_batches(
                    size.parse().context("--batch-size")?,
                    batches,
                    &events_dir,
                )
                .await;
            }
            let messages = option("--messages")?.parse().context("--messages")?;
            load::run(messages, &events_dir).await
        }
        "audit-load" => {
            let appends = option("--appends")?.parse().context("--appends")?;
            let concurrency = option("--concurrency")
                .map_or(Ok(16), |c| c.parse())
                .context("--concurrency")?;
            let verify_entries = option("--verify-entries")
                .map_or(Ok(0), |m| m.parse())
                .context("--verify-entries")?;
            audit_load::run(appends, concurrency, verify_entries).await
        }
        _ => bail!(USAGE),
    }
}
