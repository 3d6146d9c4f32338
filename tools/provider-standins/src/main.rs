//! `provider-standins`: serves the provider stand-ins as a process for the local demo. Prints one
//! JSON line with the base URLs on stdout once listening; logs go to stderr.

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use local_stack::lifetime::{Watched, terminated, watched_exit};
use provider_standins::{Accounts, StandIns};
use tracing_subscriber::EnvFilter;

const USAGE: &str = "\
usage: provider-standins [options]

  --listen ADDR                 address to serve on (default 127.0.0.1:0, a free port)
  --accounts FILE               JSON credentials (and templates) to accept, e.g.
                                {\"twilio\": [{\"account_sid\": \"AC...\", \"auth_token\": \"...\"}],
                                 \"africastalking\": [{\"username\": \"sandbox\", \"api_key\": \"...\"}],
                                 \"brevo\": [{\"api_key\": \"...\"}],
                                 \"meta\": [{\"phone_number_id\": \"...\", \"access_token\": \"...\",
                                           \"business_account_id\": \"...\"}],
                                 \"meta_templates\": [{\"business_account_id\": \"...\", \"name\": \"...\",
                                                     \"language\": \"en_US\", \"components\": [...]}],
                                 \"twilio_contents\": [{\"account_sid\": \"AC...\", \"friendly_name\": \"...\",
                                                      \"types\": {\"twilio/text\": {\"body\": \"Hi {{1}}\"}}}]}
  --twilio SID:TOKEN            accept this Twilio account (repeatable)
  --africastalking USER:KEY     accept this Africa's Talking application (repeatable)
  --brevo KEY                   accept this Brevo API key (repeatable)
  --meta PHONE_NUMBER_ID:TOKEN  accept this WhatsApp phone number id and token (repeatable)
  --max-captured N              keep at most N captured requests (default 100000)
  --allow-remote-callbacks      also send Twilio status callbacks and simulated inbound
                                webhooks to hosts off this machine (default: loopback URLs only)
  --exit-with-parent[=PID]      exit when the parent process (or process PID) goes away
  -h, --help                    show this help

Once listening, prints one line to stdout:
  {\"base_url\": ..., \"twilio\": ..., \"africastalking\": ..., \"brevo\": ..., \"meta\": ...,
   \"twilio_content\": ...}
Control API: GET /_standin/health, GET|DELETE /_standin/requests, GET /_standin/messages,
GET|DELETE /_standin/callbacks, GET|POST|DELETE /_standin/faults,
GET|POST|DELETE /_standin/twilio/outcomes, PUT /_standin/twilio/outcomes/default,
POST /_standin/accounts, POST /_standin/meta/inbound (a customer writes to a WhatsApp Cloud
number: opens their 24-hour window, optionally posts the signed webhook),
POST /_standin/twilio/inbound (the same for Twilio WhatsApp). Stops on SIGTERM or Ctrl-C.";

struct Options {
    listen: SocketAddr,
    accounts: Accounts,
    max_captured: Option<usize>,
    remote_callbacks: bool,
    exit_with: Option<Watched>,
}

fn pair(flag: &str, value: &str) -> anyhow::Result<(String, String)> {
    value
        .split_once(':')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .with_context(|| format!("{flag} expects ID:SECRET"))
}

fn parse(args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Options>> {
    let mut options = Options {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        accounts: Accounts::new(),
        max_captured: None,
        remote_callbacks: false,
        exit_with: None,
    };
    let mut files: Vec<PathBuf> = Vec::new();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        // Both `--flag value` and `--flag=value`.
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (flag, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .with_context(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => {
                options.listen = value()?.parse().context("--listen expects HOST:PORT")?;
            }
            "--accounts" => files.push(PathBuf::from(value()?)),
            "--twilio" => {
                let (sid, token) = pair("--twilio", &value()?)?;
                options.accounts = options.accounts.twilio_account(sid, token);
            }
            "--africastalking" => {
                let (user, key) = pair("--africastalking", &value()?)?;
                options.accounts = options.accounts.africastalking_account(user, key);
            }
            "--brevo" => options.accounts = options.accounts.brevo_key(value()?),
            "--meta" => {
                let (id, token) = pair("--meta", &value()?)?;
                options.accounts = options.accounts.meta_phone_number(id, token);
            }
            "--max-captured" => {
                options.max_captured = Some(
                    value()?
                        .parse()
                        .context("--max-captured expects a number")?,
                );
            }
            "--allow-remote-callbacks" => options.remote_callbacks = true,
            "--exit-with-parent" => {
                options.exit_with = Some(Watched::from_flag(inline.as_deref())?);
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading accounts file {}", file.display()))?;
        let accounts: Accounts = serde_json::from_str(&text)
            .with_context(|| format!("parsing accounts file {}", file.display()))?;
        options.accounts.extend(accounts);
    }
    Ok(Some(options))
}

/// Whether `pid` still runs (a zombie has exited; only its reaping is pending).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("provider-standins: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let Some(options) = parse(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    let mut builder = StandIns::builder()
        .accounts(options.accounts)
        .allow_remote_status_callbacks(options.remote_callbacks);
    if let Some(max) = options.max_captured {
        builder = builder.max_captured_requests(max);
    }
    let running = builder.build().spawn_on(options.listen).await?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::to_string(running.urls())?)?;
    stdout.flush()?;
    drop(stdout);

    let reason = match &options.exit_with {
        Some(watched) => tokio::select! {
            reason = terminated() => reason?,
            () = watched_exit(watched) => "watched process exited",
        },
        None => terminated().await?,
    };
    tracing::info!(reason, "shutting down");
    running.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_flags() -> anyhow::Result<()> {
        let options = parse(args(&[
            "--listen=127.0.0.1:4010",
            "--twilio",
            "AC1:tok",
            "--africastalking",
            "sandbox:key",
            "--brevo",
            "xkeysib",
            "--meta",
            "123:mt",
            "--exit-with-parent",
            "--allow-remote-callbacks",
        ]))?
        .context("options")?;
        assert_eq!(options.listen.port(), 4010);
        assert!(options.remote_callbacks);
        assert_eq!(options.exit_with, Some(Watched::Parent));
        assert_eq!(options.accounts.twilio.len(), 1);
        assert_eq!(options.accounts.africastalking[0].username, "sandbox");
        assert_eq!(options.accounts.meta[0].phone_number_id, "123");
        assert!(parse(args(&["--help"]))?.is_none());
        let me = std::process::id();
        let watching = parse(args(&[&format!("--exit-with-parent={me}")]))?.context("options")?;
        assert_eq!(watching.exit_with, Some(Watched::Pid(me)));
        assert!(parse(args(&["--exit-with-parent=4294967295"])).is_err());
        assert!(parse(args(&["--twilio", "AC1"])).is_err());
        assert!(parse(args(&["--bogus"])).is_err());
        Ok(())
    }
}
