//! `local-gateway`: serves infra/template.yaml's HTTP API on 127.0.0.1 in front of the functions
//! under `cargo lambda watch`, as API Gateway would. Prints one JSON line (base URL, issuer,
//! audience) and writes it to the state file `herald dev-token` reads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use local_gateway::event::ApiIdentity;
use local_gateway::issuer::{DEFAULT_KEY_PATH, DevIssuer};
use local_gateway::server::JWKS_PATH;
use local_gateway::template::{Template, samconfig_parameters};
use local_gateway::{DEFAULT_STATE_FILE, GatewayConfig};
use local_stack::lifetime::{Watched, watched_exit};
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, Parser)]
#[command(
    name = "local-gateway",
    about = "API Gateway (HTTP API) locally: the template's routes, JWT authorizer and CORS in front of cargo lambda watch"
)]
struct Options {
    /// Base URL of `cargo lambda watch` (its invoke API), e.g. http://127.0.0.1:9000.
    #[arg(long)]
    functions_url: String,
    #[arg(long, default_value = "infra/template.yaml")]
    template: PathBuf,
    /// Parameter overrides are read from this file's environment (missing file: none).
    #[arg(long, default_value = "samconfig.toml")]
    samconfig: PathBuf,
    #[arg(long, default_value = "default")]
    config_env: String,
    /// A template parameter, over samconfig's (repeatable). Without `JwtIssuer=...` the issuer
    /// is this gateway itself, with the development key.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Port on 127.0.0.1 (0: a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The development issuer's signing key (created when missing).
    #[arg(long, default_value = DEFAULT_KEY_PATH)]
    key: PathBuf,
    #[arg(long, default_value = DEFAULT_STATE_FILE)]
    state_file: PathBuf,
    /// The HttpApi resource to serve, when the template has several.
    #[arg(long)]
    api: Option<String>,
    #[arg(long, default_value = "123456789012")]
    account_id: String,
    #[arg(long, default_value = "local0http")]
    api_id: String,
    #[arg(long, default_value_t = 30)]
    integration_timeout_secs: u64,
    /// Exit when the parent process (or process PID) goes away.
    #[arg(long, value_name = "PID", num_args = 0..=1, require_equals = true, default_missing_value = "parent")]
    exit_with_parent: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Options::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("local-gateway: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(options: Options) -> anyhow::Result<()> {
    let watched = match options.exit_with_parent.as_deref() {
        None => None,
        // The parent's pid now: it may be gone before the key is made and the port bound.
        Some("parent") => Some(Watched::from_flag(Some(
            &std::os::unix::process::parent_id().to_string(),
        ))?),
        Some(pid) => Some(Watched::from_flag(Some(pid))?),
    };
    let template = Template::load(&options.template)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
        .await
        .context("binding 127.0.0.1")?;
    let base_url = format!("http://{}", listener.local_addr()?);

    // Template defaults, then samconfig's overrides, then the gateway as issuer, then flags.
    let mut overrides = match std::fs::read_to_string(&options.samconfig) {
        Ok(text) => samconfig_parameters(&text, &options.config_env)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(e).context("reading samconfig"),
    };
    overrides.insert("JwtIssuer".to_owned(), base_url.clone());
    for param in &options.params {
        let Some((key, value)) = param.split_once('=') else {
            bail!("--param {param}: expected KEY=VALUE");
        };
        overrides.insert(key.to_owned(), value.to_owned());
    }
    let parameters = template.parameters(&overrides)?;
    let api = template.http_api(options.api.as_deref(), &parameters)?;
    let dev_issuer = DevIssuer::load_or_create(&options.key)?;

    let authorizer = api.authorizers.first();
    let info = json!({
        "base_url": base_url,
        // Where the API's routes are: the base URL and the template's stage (`/v1`).
        "api_url": format!("{base_url}{}", api.base_path()),
        "stage": api.stage,
        "issuer": authorizer.map(|a| a.issuer.clone()),
        "audience": authorizer.map(|a| a.audience.clone()),
        "jwks_uri": format!("{base_url}{JWKS_PATH}"),
        "key": options.key,
        "routes": api.routes.len(),
    });
    if let Some(dir) = options.state_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&options.state_file, format!("{info}\n"))
        .with_context(|| format!("writing {}", options.state_file.display()))?;

    let running = local_gateway::serve(
        listener,
        GatewayConfig {
            api,
            functions_url: options.functions_url,
            identity: ApiIdentity {
                account_id: options.account_id,
                api_id: options.api_id,
            },
            dev_issuer: Some(dev_issuer),
            integration_timeout: Duration::from_secs(options.integration_timeout_secs),
        },
    )
    .await?;
    println!("{info}");
    let mut terminate = signal(SignalKind::terminate())?;
    let parent_gone = async {
        match &watched {
            Some(watched) => watched_exit(watched).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        served = running.wait() => served,
        _ = tokio::signal::ctrl_c() => Ok(()),
        _ = terminate.recv() => Ok(()),
        () = parent_gone => Ok(()),
    }
}
