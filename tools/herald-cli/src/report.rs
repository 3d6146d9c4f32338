//! `herald report compliance`: a tenant's compliance report for a period, as JSON or CSV (the
//! same report and layout as `GET /tenant/reports/compliance`), read straight from the tables
//! with the operator's limits instead of an API call's.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use herald_shared::domain::TenantId;
use herald_shared::domain::report::Period;
use herald_shared::reports::{self, Limits, Sources};
use herald_shared::store::dynamodb::{DynamoDb, TableNames};

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Messages by channel and status, failures with reasons, opt-outs and suppressions,
    /// configuration changes with their actors, and costs, for one tenant and period.
    Compliance {
        /// The tenant id.
        #[arg(long)]
        tenant: String,
        /// Start of the period, inclusive (RFC 3339, e.g. 2026-11-01T00:00:00Z).
        #[arg(long)]
        from: String,
        /// End of the period, exclusive (RFC 3339); at most 366 days after --from.
        #[arg(long)]
        to: String,
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// File to write; stdout when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Csv,
}

pub async fn run(command: ReportCommand) -> anyhow::Result<ExitCode> {
    let ReportCommand::Compliance {
        tenant,
        from,
        to,
        format,
        out,
    } = command;
    let tenant = TenantId::parse(&tenant)
        .map_err(|_| anyhow::anyhow!("--tenant: {tenant:?} is not a tenant id"))?;
    let period = Period::parse(Some(&from), Some(&to))
        .map_err(|e| anyhow::anyhow!("--{}: {}", e.field, e.message))?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let tables = TableNames::from_env().context("table names (source the stack's environment)")?;
    let store = DynamoDb::new(aws_sdk_dynamodb::Client::new(&aws), tables);
    let sources = Sources {
        messages: &store,
        audit: &store,
        recipients: &store,
    };
    let report = reports::compliance(sources, &tenant, period, Limits::OPERATOR).await?;
    let bytes = match format {
        Format::Json => {
            let mut json = serde_json::to_vec_pretty(&report)?;
            json.push(b'\n');
            json
        }
        Format::Csv => reports::to_csv(&report)?,
    };
    match &out {
        Some(path) => std::fs::write(path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&bytes)?;
            stdout.flush()?;
        }
    }
    eprintln!(
        "compliance report for {tenant}: {} messages, {} failures, {} opt-outs, {} suppressions, {} configuration changes",
        report.totals.messages,
        report.totals.failures,
        report.totals.opted_out,
        report.totals.suppressed,
        report.totals.configuration_changes
    );
    Ok(ExitCode::SUCCESS)
}
