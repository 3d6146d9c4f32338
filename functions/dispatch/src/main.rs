//! The `dispatch` Lambda, deployed once per channel queue: builds the dispatcher once per
//! container, then handles SQS batches with [`herald_shared::dispatch::sqs::handle`].

use aws_lambda_events::event::sqs::SqsEvent;
use herald_shared::app::{App, AppConfig};
use herald_shared::dispatch::sqs::{QueueClient, handle};
use herald_shared::dispatch::{DispatchConfig, Dispatcher};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    herald_shared::observability::init();
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let app = App::new(&aws, AppConfig::from_env()?, None);
    let dispatcher = Dispatcher::from_app(&app, DispatchConfig::default());
    let queue = QueueClient::new(aws_sdk_sqs::Client::new(&aws));
    run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<_, Error>(handle(&dispatcher, &queue, event.payload).await)
    }))
    .await
}
