//! The `status-webhooks` Lambda: builds the worker once per container, then posts each SQS
//! batch of status events to tenants' endpoints with
//! [`herald_shared::status_webhooks::worker::handle`].

use aws_lambda_events::event::sqs::SqsEvent;
use herald_shared::app::{App, AppConfig};
use herald_shared::dispatch::sqs::QueueClient;
use herald_shared::status_webhooks::worker::{Worker, WorkerConfig, handle};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    herald_shared::observability::init();
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let app = App::new(&aws, AppConfig::from_env()?, None);
    let worker = Worker::from_app(&app, WorkerConfig::from_env()?)?;
    let queue = QueueClient::new(aws_sdk_sqs::Client::new(&aws));
    run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(handle(&worker, &queue, event.payload).await)
    }))
    .await
}
