//! `herald dev-token`: a token signed by the local stack's development issuer, to call the local
//! gateway as one tenant and role. The key lives under `.local/`; no deployed API trusts it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use herald_shared::domain::TenantId;
use herald_shared::domain::identity::Role;
use local_gateway::issuer::{DEFAULT_KEY_PATH, DevIdentity, DevIssuer, dev_claims, parse_ttl};
use serde_json::Value;

#[derive(Debug, Args)]
pub struct DevTokenArgs {
    /// The tenant the token acts for (`herald:tenant`); platform admins may have none.
    #[arg(long)]
    tenant: Option<String>,
    /// `tenant_admin`, `event_manager` or `platform_admin` (`herald:role`).
    #[arg(long)]
    role: String,
    /// The subject (`sub`); default `dev-<role>`.
    #[arg(long)]
    sub: Option<String>,
    /// How long the token is valid: 90, 45s, 30m, 1h, 2d.
    #[arg(long, default_value = "1h")]
    ttl: String,
    /// The issuer (`iss`); default: the running local gateway's, from its state file.
    #[arg(long)]
    issuer: Option<String>,
    /// The audience (`aud`); default: the running local gateway's.
    #[arg(long)]
    audience: Option<String>,
    /// The development signing key (PKCS#8 PEM; made when missing).
    #[arg(long, default_value = DEFAULT_KEY_PATH)]
    key: PathBuf,
    /// Where the local gateway wrote its issuer and audience.
    #[arg(long, default_value = local_gateway::DEFAULT_STATE_FILE)]
    gateway_state: PathBuf,
}

pub fn run(args: DevTokenArgs) -> anyhow::Result<ExitCode> {
    let role = Role::parse(&args.role).with_context(|| {
        format!(
            "--role {}: expected tenant_admin, event_manager or platform_admin",
            args.role
        )
    })?;
    let tenant = match &args.tenant {
        Some(t) => Some(
            TenantId::parse(t)
                .map_err(|e| anyhow::anyhow!("--tenant {t}: {e}"))?
                .to_string(),
        ),
        None if role == Role::PlatformAdmin => None,
        None => bail!("--tenant is required for {}", args.role),
    };
    let ttl = parse_ttl(&args.ttl)?;

    let gateway: Option<Value> = std::fs::read_to_string(&args.gateway_state)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let from_gateway = |field: &str| -> Option<String> {
        let value = gateway.as_ref()?.get(field)?;
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Array(items) => items.first()?.as_str().map(str::to_owned),
            _ => None,
        }
    };
    let missing = || {
        format!(
            "no local gateway state at {}: start the local gateway, or give --issuer and --audience",
            args.gateway_state.display()
        )
    };
    let issuer = match args.issuer {
        Some(i) => i,
        None => from_gateway("issuer").with_context(missing)?,
    };
    let audience = match args.audience {
        Some(a) => a,
        None => from_gateway("audience").with_context(missing)?,
    };

    let who = DevIdentity {
        subject: args.sub.unwrap_or_else(|| format!("dev-{}", args.role)),
        role: args.role,
        tenant,
    };
    let signer = DevIssuer::load_or_create(&args.key)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let token = signer.sign(&dev_claims(&who, &issuer, &audience, now, ttl))?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}
