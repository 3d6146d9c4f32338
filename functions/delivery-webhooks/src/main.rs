//! The `delivery-webhooks` Lambda: providers' delivery receipts and inbound messages. Builds
//! Herald's ports and the SNS certificate cache once, then serves each provider's callbacks
//! with [`herald_shared::api::receipts::handle`].

use herald_shared::api::receipts::{self, Receiver};
use herald_shared::{App, api};
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    herald_shared::observability::init();
    let receiver = Receiver::new(App::from_env().await?)?;
    let receiver = &receiver;
    run(service_fn(move |request: Request| async move {
        api::serve(&receiver.app, request, |_, request| {
            receipts::handle(receiver, request)
        })
        .await
    }))
    .await
}
