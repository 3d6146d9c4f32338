//! `herald audit verify` and `herald audit export`.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use herald_shared::audit::{self, Window};
use herald_shared::audit_anchors::{self, AnchorSigner, KmsAnchorSigner};
use herald_shared::store::AuditStore as _;
use herald_shared::store::dynamodb::{DynamoDb, TableNames};
use indicatif::{ProgressBar, ProgressStyle};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recomputes every hash chain of a tenant; names each edited, deleted, inserted or
    /// reordered entry. Exit code 1 when anything is wrong.
    Verify {
        #[command(flatten)]
        scope: Scope,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// The regulatory retention period in days: a chain may start after its first entry
        /// when its oldest entry is about that old (earlier ones expired).
        #[arg(long, env = "AUDIT_RETENTION_DAYS")]
        retention_days: Option<i64>,
        /// Fail (exit 1) when the latest signed anchor is older than this many hours, or the
        /// log has entries and no anchor: the anchoring job stopped, or its newest anchors
        /// were deleted. Give about twice the schedule's period.
        #[arg(long)]
        max_anchor_age_hours: Option<u64>,
        /// Accept a scope with no entries at all (a new tenant). Without it an empty log is an
        /// error (exit code 2): a misspelt tenant id, or a log deleted whole, must not pass.
        #[arg(long)]
        allow_empty: bool,
    },
    /// Signs where every chain stands (a new anchor when anything moved since the last one),
    /// for one tenant or, with `--all`, every scope with entries: what the scheduled
    /// audit-anchor function does. Needs AUDIT_ANCHOR_KEY_ID and kms:Sign on it.
    Anchor {
        /// The tenant id, or `platform`.
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        tenant: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Writes a tenant's entries as JSON lines (chain, number, links and the entry).
    Export {
        #[command(flatten)]
        scope: Scope,
        /// File to write; stdout when absent.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct Scope {
    /// The tenant id, or `platform` for platform-wide changes.
    #[arg(long)]
    tenant: String,
    /// Only entries at or after this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    from: Option<OffsetDateTime>,
    /// Only entries before this time (RFC 3339).
    #[arg(long, value_parser = rfc3339)]
    to: Option<OffsetDateTime>,
}

impl Scope {
    fn window(&self) -> Window {
        Window {
            from: self.from,
            to: self.to,
        }
    }
}

fn rfc3339(value: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|e| format!("not an RFC 3339 time: {e}"))
}

async fn store() -> anyhow::Result<DynamoDb> {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let tables = TableNames::from_env().context("table names (source the stack's environment)")?;
    Ok(DynamoDb::new(aws_sdk_dynamodb::Client::new(&aws), tables))
}

/// The anchor key named by `AUDIT_ANCHOR_KEY_ID`, if the environment names one.
async fn anchor_signer() -> Option<KmsAnchorSigner> {
    let key_id = std::env::var("AUDIT_ANCHOR_KEY_ID")
        .ok()
        .filter(|k| !k.is_empty())?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    Some(KmsAnchorSigner::new(aws_sdk_kms::Client::new(&aws), key_id))
}

pub async fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify {
            scope,
            json,
            retention_days,
            max_anchor_age_hours,
            allow_empty,
        } => {
            let store = store().await?;
            let total = audit::expected_entries(&store, &scope.tenant).await?;
            // An empty log with anchors was not always empty: that is verification's to name.
            if total == 0 && !allow_empty && store.latest_anchor(&scope.tenant).await?.is_none() {
                eprintln!(
                    "no audit entries for {:?}: nothing to verify (check the tenant id; \
                     --allow-empty accepts an empty log)",
                    scope.tenant
                );
                return Ok(ExitCode::from(2));
            }
            let bar = ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{spinner} verifying {pos}/{len} entries [{bar:30}] {per_sec} eta {eta}",
                )?
                .progress_chars("=> "),
            );
            let started = std::time::Instant::now();
            let signer = anchor_signer().await;
            if signer.is_none() {
                eprintln!(
                    "AUDIT_ANCHOR_KEY_ID is not set: signed anchors are not checked \
                     (a chain cut back at its tail, or deleted whole, would not show)"
                );
            }
            let report = audit::verify(
                &store,
                &scope.tenant,
                scope.window(),
                retention_days.map(time::Duration::days),
                signer.as_ref().map(|s| s as &dyn AnchorSigner),
                &|read| bar.set_position(read),
            )
            .await?;
            bar.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for problem in report.problems() {
                    println!("TAMPERED  {problem}");
                }
                if let Some(anchors) = &report.anchors {
                    match (anchors.latest_seq, anchors.latest_at) {
                        (Some(seq), Some(at)) => println!(
                            "{} signed anchor(s) checked; the latest, {seq}, at {}",
                            anchors.count,
                            at.format(&Rfc3339).unwrap_or_default()
                        ),
                        _ => println!("no signed anchors yet"),
                    }
                }
                println!(
                    "{} entries in {} chains ({} in the window) read in {:.1} s: {}",
                    report.entries,
                    report.chains.len(),
                    report.in_window,
                    started.elapsed().as_secs_f64(),
                    if report.intact() {
                        "intact".to_owned()
                    } else {
                        format!("{} problem(s)", report.problems().count())
                    }
                );
            }
            let stale = match (max_anchor_age_hours, &report.anchors) {
                (Some(hours), Some(anchors)) if report.entries > 0 => {
                    let limit = time::Duration::hours(i64::try_from(hours).unwrap_or(i64::MAX));
                    match anchors.latest_at {
                        Some(at) if OffsetDateTime::now_utc() - at <= limit => false,
                        Some(_) | None => {
                            println!(
                                "STALE     no signed anchor in the last {hours} h: the anchoring \
                                 job stopped, or its newest anchors were deleted"
                            );
                            true
                        }
                    }
                }
                (Some(_), None) => {
                    anyhow::bail!("--max-anchor-age-hours needs AUDIT_ANCHOR_KEY_ID")
                }
                _ => false,
            };
            Ok(if report.intact() && !stale {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AuditCommand::Anchor { tenant, all } => {
            let store = store().await?;
            let signer = anchor_signer()
                .await
                .context("AUDIT_ANCHOR_KEY_ID is not set (source the stack's environment)")?;
            let now = OffsetDateTime::now_utc();
            match (tenant, all) {
                (Some(scope), false) => {
                    let outcome = audit_anchors::anchor_scope(&store, &signer, &scope, now).await?;
                    println!("{scope}: {}", serde_json::to_string(&outcome)?);
                }
                _ => {
                    let run = audit_anchors::anchor_all(&store, &signer, now).await?;
                    println!("{}", serde_json::to_string(&run)?);
                    if run.failed > 0 {
                        return Ok(ExitCode::from(1));
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Export { scope, out } => {
            let store = store().await?;
            let written = match &out {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let mut writer = std::io::BufWriter::new(file);
                    audit::export(&store, &scope.tenant, scope.window(), &mut writer).await?
                }
                None => {
                    let mut stdout = std::io::BufWriter::new(std::io::stdout());
                    let n =
                        audit::export(&store, &scope.tenant, scope.window(), &mut stdout).await?;
                    stdout.flush()?;
                    n
                }
            };
            eprintln!("exported {written} entries");
            Ok(ExitCode::SUCCESS)
        }
    }
}
