//! The `preference-centre` Lambda: a recipient's own view of their preferences and consents,
//! opened by the signed link Herald made for them (no JWT: the recipient has no account). Builds
//! Herald's ports once, then serves `GET`/`PUT /preferences/{token}` with
//! [`herald_shared::api::preference_centre::handle`].

use herald_shared::{App, api};
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    herald_shared::observability::init();
    let app = App::from_env().await?;
    run(service_fn(|request: Request| {
        api::serve(&app, request, api::preference_centre::handle)
    }))
    .await
}
