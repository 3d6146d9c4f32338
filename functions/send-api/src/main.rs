//! The `send-api` Lambda: builds Herald's ports from the environment once, then serves send
//! requests with [`herald_shared::api::send::handle`].

use herald_shared::{App, api};
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    herald_shared::observability::init();
    let app = App::from_env().await?;
    run(service_fn(|request: Request| {
        api::serve(&app, request, api::send::handle)
    }))
    .await
}
