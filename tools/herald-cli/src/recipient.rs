//! `herald recipient export|erase`: data-subject requests handled by an operator, straight on
//! the tables (the same code as `POST /tenant/recipients/export` and `.../erase`). The address
//! is an argument, so it may stay in the operator's shell history: prefer the API where the
//! tenant can make the request itself. Erasure is audited with the operator as actor.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use herald_shared::api::recipients::LedgerView;
use herald_shared::data_subject::{self, Actor, Sources};
use herald_shared::domain::recipient::Recipient;
use herald_shared::domain::{Channel, TenantId};
use herald_shared::recipient_keys::{RecipientKeys as _, SecretsManagerRecipientKeys};
use herald_shared::store::dynamodb::{DynamoDb, TableNames};

/// Export pages an operator run reads before stopping (100 messages each).
const EXPORT_PAGES: usize = 1_000;
/// Erasure runs before giving up on messages that stay in flight.
const ERASE_RUNS: usize = 10;

#[derive(Debug, Subcommand)]
pub enum RecipientCommand {
    /// Everything Herald holds on one recipient of a tenant, as JSON.
    Export {
        #[arg(long)]
        tenant: String,
        /// sms, whatsapp or email.
        #[arg(long)]
        channel: String,
        #[arg(long)]
        address: String,
        /// File to write; stdout when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Erases one recipient's personal data (messages, consent evidence, preferences); their
    /// opt-outs and suppressions are kept.
    Erase {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        channel: String,
        #[arg(long)]
        address: String,
    },
}

async fn subject(
    aws: &aws_config::SdkConfig,
    tenant: &str,
    channel: &str,
    address: &str,
) -> anyhow::Result<(TenantId, String)> {
    let tenant = TenantId::parse(tenant)
        .map_err(|_| anyhow::anyhow!("--tenant: {tenant:?} is not a tenant id"))?;
    let channel: Channel = serde_json::from_value(serde_json::json!(channel))
        .map_err(|_| anyhow::anyhow!("--channel: sms, whatsapp or email"))?;
    // Never echo the address back: it is personal data.
    let recipient =
        Recipient::parse(channel, address).map_err(|m| anyhow::anyhow!("--address: {m}"))?;
    // The deployment's key for recipient keys (the template's RecipientKeySecret).
    let secret = std::env::var("RECIPIENT_KEY_SECRET_ARN")
        .context("RECIPIENT_KEY_SECRET_ARN (source the stack's environment)")?;
    let keys = SecretsManagerRecipientKeys::new(aws_sdk_secretsmanager::Client::new(aws), secret);
    let keyring = keys.keyring().await?;
    let key = recipient.key(&keyring, tenant.as_str());
    Ok((tenant, key))
}

pub async fn run(command: RecipientCommand) -> anyhow::Result<ExitCode> {
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let tables = TableNames::from_env().context("table names (source the stack's environment)")?;
    let store = DynamoDb::new(aws_sdk_dynamodb::Client::new(&aws), tables);
    let sources = Sources {
        messages: &store,
        consents: &store,
    };
    match command {
        RecipientCommand::Export {
            tenant,
            channel,
            address,
            out,
        } => {
            let (tenant, key) = subject(&aws, &tenant, &channel, &address).await?;
            let mut messages = Vec::new();
            let mut after: Option<String> = None;
            let mut ledger = None;
            for page in 0..=EXPORT_PAGES {
                anyhow::ensure!(
                    page < EXPORT_PAGES,
                    "more than {EXPORT_PAGES} pages of messages"
                );
                let part = data_subject::export(
                    sources,
                    &tenant,
                    &key,
                    after.as_deref(),
                    data_subject::EXPORT_PAGE,
                )
                .await?;
                messages.extend(part.messages);
                ledger.get_or_insert(part.ledger);
                after = part.next;
                if after.is_none() {
                    break;
                }
            }
            let ledger = ledger.unwrap_or_default();
            let mut body = serde_json::to_value(LedgerView::of(&key, &ledger))?;
            body["messages"] = serde_json::json!(messages);
            let mut json = serde_json::to_vec_pretty(&body)?;
            json.push(b'\n');
            match &out {
                Some(path) => std::fs::write(path, &json)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => {
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(&json)?;
                    stdout.flush()?;
                }
            }
            eprintln!("recipient {key}: {} message(s) exported", messages.len());
            Ok(ExitCode::SUCCESS)
        }
        RecipientCommand::Erase {
            tenant,
            channel,
            address,
        } => {
            let (tenant, key) = subject(&aws, &tenant, &channel, &address).await?;
            let operator = format!(
                "herald-cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "operator".to_owned())
            );
            let request_id = format!(
                "cli-{}",
                time::OffsetDateTime::now_utc().unix_timestamp_nanos()
            );
            for run in 1..=ERASE_RUNS {
                let outcome = data_subject::erase(
                    sources,
                    Actor::Operator(&operator),
                    &tenant,
                    &key,
                    &request_id,
                )
                .await?;
                println!("{}", serde_json::to_string_pretty(&outcome)?);
                if outcome.complete {
                    return Ok(ExitCode::SUCCESS);
                }
                eprintln!("run {run}: not complete yet; running again");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            anyhow::bail!("messages stayed in flight through {ERASE_RUNS} runs: run it again later")
        }
    }
}
