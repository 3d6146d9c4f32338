//! `herald`: the operator CLI. Talks to AWS with the usual credential chain (and to the local
//! emulator when `AWS_ENDPOINT_URL` is set).
//!
//! ```text
//! herald redrive --dead-letter-queue URL --queue URL [--limit N]
//! ```

use anyhow::{Context as _, bail};

const USAGE: &str = "usage: herald redrive --dead-letter-queue URL --queue URL [--limit N]";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match args.first().map(String::as_str) {
        Some("redrive") => {
            let dead_letters = option("--dead-letter-queue").context(USAGE)?;
            let queue = option("--queue").context(USAGE)?;
            let limit = option("--limit")
                .map(|l| l.parse())
                .transpose()
                .context("--limit")?
                .unwrap_or(10_000);
            let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let moved = herald_shared::redrive::redrive(
                &aws_sdk_sqs::Client::new(&aws),
                &dead_letters,
                &queue,
                limit,
            )
            .await?;
            println!("redrove {moved} message(s)");
            Ok(())
        }
        _ => bail!(USAGE),
    }
}
