//! `GET /events/{eventId}/configuration`: the event's resolved configuration with the layer
//! every value came from.

use lambda_http::Request;

use super::routes::RouteId;
use crate::app::App;
use crate::domain::EventId;
use crate::domain::identity::Action;
use crate::http::{self, ApiError, ApiResult};
use crate::resolution::{redact_credentials, resolve_event};

pub async fn handle(app: &App, request: Request) -> ApiResult {
    let route = http::route(&request);
    let Some(id) = RouteId::from_key(&route.0) else {
        return Err(ApiError::NoRoute(route.0));
    };
    match id {
        RouteId::GetEventConfiguration => {
            let caller = http::caller(&request)?;
            let tenant = caller.tenant_for(Action::ReadEvent)?;
            let event: EventId = http::path_param(&request, "eventId")?;
            let resolved = resolve_event(
                app.providers.as_ref(),
                app.templates.as_ref(),
                tenant,
                &event,
            )
            .await?
            .ok_or(ApiError::NotFound("event"))?;
            let mut body =
                serde_json::to_value(&resolved).map_err(|e| ApiError::Internal(e.into()))?;
            redact_credentials(&mut body);
            http::respond(200, &body)
        }
        _ => Err(ApiError::NoRoute(route.0)),
    }
}
