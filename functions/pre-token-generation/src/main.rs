//! The `pre-token-generation` Lambda: Cognito's pre token generation trigger (V2_0/V3_0) adding
//! Herald's tenant and role claims ([`herald_shared::pre_token_generation::handle`]). The tenant
//! systems' app clients are read once, from `TENANT_SYSTEM_CLIENTS`; a malformed list stops the
//! function from starting rather than issue tokens without it.

use herald_shared::domain::token_claims::TenantSystems;
use herald_shared::pre_token_generation::{PreTokenGenerationEvent, handle};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    herald_shared::observability::init();
    let tenant_systems =
        TenantSystems::parse(&std::env::var("TENANT_SYSTEM_CLIENTS").unwrap_or_default())?;
    let tenant_systems = &tenant_systems;
    run(service_fn(
        move |event: LambdaEvent<PreTokenGenerationEvent>| async move {
            let event = event.payload;
            // Ids only: the user name and attributes may be an address or a phone number.
            let span = tracing::info_span!(
                "pre_token_generation",
                trigger_source = %event.trigger_source,
                client_id = %event.caller_context.client_id,
            );
            let _entered = span.enter();
            handle(event, tenant_systems).map_err(|error| {
                tracing::warn!(reason = %error, "token refused");
                Error::from(error)
            })
        },
    ))
    .await
}
