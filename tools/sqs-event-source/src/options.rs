//! Command line of `sqs-event-source`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::lifecycle::Watched;

pub const USAGE: &str = "\
usage: sqs-event-source --stack-json FILE --invoke-url URL [options]

Lambda's SQS event source mapping, locally: polls every queue listed in stack.json (written by
scripts/stack.py up: the channel queues, and status-webhooks) and invokes the function with real SQS event batches at
URL/2015-03-31/functions/FUNCTION/invocations (cargo lambda watch). Records the function does
not report in batchItemFailures are deleted; the others come back after their visibility
timeout and move to the dead-letter queue after maxReceiveCount receives.

  --stack-json FILE             stack.json of the local stack (endpoint, region, queues)
  --invoke-url URL              base URL of the Lambda invoke API, e.g. http://127.0.0.1:9000
  --function NAME               function to invoke (default: each queue's consumer in stack.json)
  --channel NAME                poll only this queue, e.g. sms or status-webhooks (repeatable;
                                default: all)
  --batch-size N                messages per invocation, 1-10 (default 10)
  --wait-seconds N              long-poll wait of each receive, 0-20 (default 1)
  --invoke-timeout SECONDS      give up on an invocation after this long (default 600: the
                                first invocation under cargo lambda watch builds the function)
  --idle-exit SECONDS           exit after this long without a message
  --exit-with-parent[=PID]      exit when the parent process (or process PID) goes away
  -h, --help                    show this help

Stops on SIGTERM or Ctrl-C once the batches in flight are done (a second signal stops at
once). Logs one line per batch to stderr (queue, count, failed, deleted); never a body.";

#[derive(Debug)]
pub struct Options {
    pub stack_json: PathBuf,
    pub invoke_url: String,
    pub function: Option<String>,
    pub channels: Vec<String>,
    pub batch_size: i32,
    pub wait_seconds: i32,
    pub invoke_timeout: Duration,
    pub idle_exit: Option<Duration>,
    pub exit_with: Option<Watched>,
}

fn number<T>(flag: &str, value: &str, range: std::ops::RangeInclusive<T>) -> anyhow::Result<T>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let parsed: T = value
        .parse()
        .ok()
        .with_context(|| format!("{flag} expects a number"))?;
    if !range.contains(&parsed) {
        bail!(
            "{flag} must be between {} and {}",
            range.start(),
            range.end()
        );
    }
    Ok(parsed)
}

/// `None` for `--help`.
pub fn parse(args: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Options>> {
    let mut stack_json = None;
    let mut invoke_url = None;
    let mut options = Options {
        stack_json: PathBuf::new(),
        invoke_url: String::new(),
        function: None,
        channels: Vec::new(),
        batch_size: 10,
        wait_seconds: 1,
        invoke_timeout: Duration::from_secs(600),
        idle_exit: None,
        exit_with: None,
    };
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
            "--stack-json" => stack_json = Some(PathBuf::from(value()?)),
            "--invoke-url" => invoke_url = Some(value()?),
            "--function" => options.function = Some(value()?),
            "--channel" => options.channels.push(value()?),
            "--batch-size" => options.batch_size = number(&flag, &value()?, 1..=10)?,
            "--wait-seconds" => options.wait_seconds = number(&flag, &value()?, 0..=20)?,
            "--invoke-timeout" => {
                options.invoke_timeout = Duration::from_secs(number(&flag, &value()?, 1..=86_400)?);
            }
            "--idle-exit" => {
                options.idle_exit = Some(Duration::from_secs_f64(number(
                    &flag,
                    &value()?,
                    0.1..=86_400.0,
                )?));
            }
            "--exit-with-parent" => {
                options.exit_with = Some(Watched::from_flag(inline.as_deref())?);
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    options.stack_json =
        stack_json.with_context(|| format!("--stack-json is required\n\n{USAGE}"))?;
    options.invoke_url =
        invoke_url.with_context(|| format!("--invoke-url is required\n\n{USAGE}"))?;
    Ok(Some(options))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_flags() -> anyhow::Result<()> {
        let me = std::process::id();
        let options = parse(args(&[
            "--stack-json",
            ".local/run/stack/stack.json",
            "--invoke-url=http://127.0.0.1:9000",
            "--function",
            "dispatch",
            "--channel",
            "sms",
            "--batch-size",
            "5",
            "--wait-seconds=0",
            "--idle-exit",
            "2.5",
            &format!("--exit-with-parent={me}"),
        ]))?
        .context("options")?;
        assert_eq!(options.invoke_url, "http://127.0.0.1:9000");
        assert_eq!(options.function.as_deref(), Some("dispatch"));
        assert_eq!(options.channels, ["sms"]);
        assert_eq!((options.batch_size, options.wait_seconds), (5, 0));
        assert_eq!(options.idle_exit, Some(Duration::from_millis(2500)));
        assert_eq!(options.exit_with, Some(Watched::Pid(me)));
        let defaults = parse(args(&[
            "--stack-json",
            "s.json",
            "--invoke-url",
            "u",
            "--exit-with-parent",
        ]))?
        .context("options")?;
        assert_eq!((defaults.batch_size, defaults.wait_seconds), (10, 1));
        assert_eq!(defaults.exit_with, Some(Watched::Parent));
        assert!(parse(args(&["--help"]))?.is_none());
        assert!(parse(args(&["--invoke-url", "u"])).is_err());
        assert!(
            parse(args(&[
                "--stack-json",
                "s",
                "--invoke-url",
                "u",
                "--batch-size",
                "11"
            ]))
            .is_err()
        );
        assert!(parse(args(&["--stack-json", "s", "--invoke-url", "u", "--bogus"])).is_err());
        assert!(
            parse(args(&[
                "--stack-json",
                "s",
                "--invoke-url",
                "u",
                "--exit-with-parent=4294967295"
            ]))
            .is_err()
        );
        Ok(())
    }
}
