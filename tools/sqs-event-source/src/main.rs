//! `sqs-event-source`: what Lambda's SQS event source mapping does, locally. Polls each channel
//! queue of the emulator stack and invokes the function under `cargo lambda watch` with real SQS
//! event batches, honouring `ReportBatchItemFailures`. See `--help`.

mod event;
mod lifecycle;
mod options;
mod poller;
mod stack;

use std::io::IsTerminal as _;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use tracing_subscriber::EnvFilter;

use crate::event::Source;
use crate::lifecycle::Activity;
use crate::poller::{Invoker, Poller};
use crate::stack::Stack;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sqs-event-source: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn")),
        )
        .init();

    let Some(options) = options::parse(std::env::args().skip(1))? else {
        println!("{}", options::USAGE);
        return Ok(());
    };
    let stack = Stack::load(&options.stack_json)?;
    for channel in &options.channels {
        if !stack.queues.contains_key(channel) {
            bail!(
                "--channel {channel}: stack.json has no such queue (known: {})",
                stack.queues.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let sqs = stack.sqs_client().await;
    let activity = Arc::new(Activity::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);

    let mut pollers = Vec::new();
    for (channel, queue) in &stack.queues {
        if !options.channels.is_empty() && !options.channels.contains(channel) {
            continue;
        }
        let function = options
            .function
            .clone()
            .or_else(|| queue.binary.clone())
            .with_context(|| {
                format!("no --function, and stack.json names no consumer of the {channel} queue")
            })?;
        let invoker = Invoker::new(&options.invoke_url, &function, options.invoke_timeout)?;
        tracing::info!(queue = %channel, function = %function, "polling");
        let poller = Poller {
            channel: channel.clone(),
            queue_url: queue.url.clone(),
            source: Source {
                queue_arn: queue.arn.clone(),
                region: stack.region.clone(),
            },
            sqs: sqs.clone(),
            invoker: Arc::new(invoker),
            batch_size: options.batch_size,
            wait_seconds: options.wait_seconds,
            activity: activity.clone(),
        };
        pollers.push(tokio::spawn(poller.run(stopped.clone())));
    }

    let watched = async {
        match &options.exit_with {
            Some(watched) => lifecycle::watched_exit(watched).await,
            None => std::future::pending().await,
        }
    };
    let idle = async {
        match options.idle_exit {
            Some(limit) => activity.idle(limit).await,
            None => std::future::pending().await,
        }
    };
    let reason = tokio::select! {
        reason = lifecycle::terminated() => reason?,
        () = watched => "watched process exited",
        () = idle => "idle",
    };
    tracing::info!(reason, "stopping");
    let _ = stop.send(true);
    tokio::select! {
        ended = futures::future::join_all(pollers) => {
            for poller in ended {
                if let Err(error) = poller {
                    tracing::error!(error = %error, "a poller ended abnormally");
                }
            }
        }
        again = lifecycle::terminated() => {
            tracing::warn!(
                reason = again?,
                "stopping now; the batches in flight come back after their visibility timeout"
            );
        }
    }
    Ok(())
}
