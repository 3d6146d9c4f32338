//! `herald`: the operator CLI. Talks to AWS with the usual credential chain (and to the local
//! emulator when `AWS_ENDPOINT_URL` is set); table names come from the same environment
//! variables the functions read (`AUDIT_TABLE`, ...; a local stack's `stack.env`).
//!
//! ```text
//! herald audit verify --tenant T [--from RFC3339] [--to RFC3339] [--json]
//! herald audit export --tenant T [--from RFC3339] [--to RFC3339] [--out FILE]
//! herald redrive --dead-letter-queue URL --queue URL [--limit N]
//! herald report compliance --tenant T --from RFC3339 --to RFC3339 [--format json|csv] [--out FILE]
//! herald recipient export --tenant T --channel C --address A [--out FILE]
//! herald recipient erase --tenant T --channel C --address A
//! herald dev-token --tenant T --role R [--sub S] [--ttl 1h] [--issuer URL --audience A --key PATH]
//! ```
//!
//! Exit codes: 0 success (for `verify`: every chain intact), 1 tampering found, 2 the command
//! could not run (bad arguments, AWS unreachable).

mod audit;
mod dev_token;
mod recipient;
mod report;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "herald", version, about = "Herald's operator CLI")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Reports for operators and regulators.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Data-subject requests: export or erase what Herald holds on one recipient.
    #[command(subcommand)]
    Recipient(recipient::RecipientCommand),
    /// Prints a token from the local stack's development issuer, for the local gateway.
    DevToken(dev_token::DevTokenArgs),
    /// Prints the HTTP API's OpenAPI 3.1 document (what `docs/openapi.json` holds).
    Openapi {
        /// The sample API Gateway events whose bodies become the document's examples.
        #[arg(long, default_value = "events")]
        events: std::path::PathBuf,
    },
    /// Moves dead-lettered messages back to their queue.
    Redrive {
        #[arg(long)]
        dead_letter_queue: String,
        #[arg(long)]
        queue: String,
        #[arg(long, default_value_t = 10_000)]
        limit: usize,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Audit(command) => audit::run(command).await,
        Command::Report(command) => report::run(command).await,
        Command::Recipient(command) => recipient::run(command).await,
        Command::DevToken(args) => dev_token::run(args),
        Command::Openapi { events } => openapi(&events),
        Command::Redrive {
            dead_letter_queue,
            queue,
            limit,
        } => redrive(&dead_letter_queue, &queue, limit).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("herald: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn redrive(dead_letters: &str, queue: &str, limit: usize) -> anyhow::Result<ExitCode> {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let moved = herald_shared::redrive::redrive(
        &aws_sdk_sqs::Client::new(&aws),
        dead_letters,
        queue,
        limit,
    )
    .await?;
    println!("redrove {moved} message(s)");
    Ok(ExitCode::SUCCESS)
}

fn openapi(events: &std::path::Path) -> anyhow::Result<ExitCode> {
    let examples = herald_shared::api::contract::Examples::load(events)
        .with_context(|| format!("reading the sample events in {}", events.display()))?;
    println!("{}", herald_shared::api::contract::render(&examples));
    Ok(ExitCode::SUCCESS)
}
