//! Amazon Cognito's pre token generation trigger (event versions 2 and 3): puts `herald:tenant`
//! and `herald:role` into the tokens a Herald user pool issues, so API Gateway's JWT authorizer
//! passes them to the functions. A person's come from their `custom:tenant`/`custom:role`
//! attributes, a tenant system's (client credentials, version 3 only) from the app client it
//! authenticated as. When they cannot be given, the trigger fails and Cognito issues no token.
//!
//! The event types are Herald's own: `aws_lambda_events` (1.2) knows no
//! `TokenGeneration_ClientCredentials` trigger source, so a version 3 machine-to-machine event
//! would not even parse with it. Fields Herald does not read are kept as they came.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::token_claims::{HeraldClaims, Refused, TenantSystems};
use crate::http::{ROLE_CLAIM, TENANT_CLAIM};

/// The trigger source of a token issued to an app client with the client credentials grant.
pub const CLIENT_CREDENTIALS: &str = "TokenGeneration_ClientCredentials";

/// The event Cognito sends, and (with `response` filled in) what the trigger answers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreTokenGenerationEvent {
    /// `"1"`, `"2"` or `"3"`: the user pool's `LambdaVersion` (V1_0, V2_0, V3_0).
    pub version: String,
    pub trigger_source: String,
    pub caller_context: CallerContext,
    pub request: TokenRequest,
    #[serde(default)]
    pub response: TokenResponse,
    /// `region`, `userPoolId`, `userName`: returned untouched, never read or logged (a user
    /// name may be an email address).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallerContext {
    /// The app client the token is for: set by Cognito, not by the caller.
    pub client_id: String,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    /// Empty (or null) for client credentials.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub user_attributes: HashMap<String, String>,
    /// `groupConfiguration`, `scopes`, `clientMetadata` (which the caller controls, so nothing
    /// is decided from it).
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    pub claims_and_scope_override_details: Option<ClaimsAndScopeOverrideDetails>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimsAndScopeOverrideDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token_generation: Option<TokenGeneration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token_generation: Option<TokenGeneration>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenGeneration {
    pub claims_to_add_or_override: HashMap<String, Value>,
}

fn null_as_empty<'de, D>(deserializer: D) -> Result<HashMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Ok(Option::deserialize(deserializer)?.unwrap_or_default())
}

/// Why the trigger fails (and Cognito refuses the token). Shown to whoever asked for it: never a
/// value from the user's attributes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    #[error(transparent)]
    Refused(#[from] Refused),
    /// A version 1 event can only change ID tokens; API Gateway reads access tokens.
    #[error(
        "the pre token generation trigger must be configured with LambdaVersion V2_0 or V3_0, not event version {0}"
    )]
    UnsupportedVersion(String),
}

/// Whether this token is a tenant system's (client credentials) rather than a person's.
pub fn is_client_credentials(event: &PreTokenGenerationEvent) -> bool {
    event.trigger_source == CLIENT_CREDENTIALS
}

/// Adds the Herald claims to the event's response: to the access token (which API Gateway
/// verifies) and, for a person, to the ID token too (which the wizard reads to know who signed
/// in).
pub fn handle(
    mut event: PreTokenGenerationEvent,
    tenant_systems: &TenantSystems,
) -> Result<PreTokenGenerationEvent, TriggerError> {
    if !matches!(event.version.as_str(), "2" | "3") {
        return Err(TriggerError::UnsupportedVersion(event.version));
    }
    let machine = is_client_credentials(&event);
    let claims = if machine {
        tenant_systems.for_client(&event.caller_context.client_id)?
    } else {
        HeraldClaims::for_user(&event.request.user_attributes)?
    };
    let added = token_claims(&claims);
    let details = event
        .response
        .claims_and_scope_override_details
        .get_or_insert_with(Default::default);
    merge(&mut details.access_token_generation, &added);
    if !machine {
        merge(&mut details.id_token_generation, &added);
    }
    Ok(event)
}

/// The claims as they go into a token: `herald:tenant` only when there is a tenant.
pub fn token_claims(claims: &HeraldClaims) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    out.insert(
        ROLE_CLAIM.to_owned(),
        Value::from(claims.role.claim_value()),
    );
    if let Some(tenant) = &claims.tenant {
        out.insert(TENANT_CLAIM.to_owned(), Value::from(tenant.as_str()));
    }
    out
}

fn merge(generation: &mut Option<TokenGeneration>, added: &HashMap<String, Value>) {
    let generation = generation.get_or_insert_with(Default::default);
    for (name, value) in added {
        generation
            .claims_to_add_or_override
            .insert(name.clone(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use lambda_http::request::from_str;
    use serde_json::json;

    use super::*;
    use crate::domain::TenantId;
    use crate::domain::identity::{Caller, Role};
    use crate::http::caller;

    const USER_V3: &str = include_str!("../../events/pre-token-generation/hosted-auth-user.json");
    const USER_V2: &str =
        include_str!("../../events/pre-token-generation/refresh-tokens-user-v2.json");
    const CLIENT_CREDENTIALS_V3: &str =
        include_str!("../../events/pre-token-generation/client-credentials.json");
    /// A request as API Gateway hands it to a function, whose claims the tests replace.
    const API_REQUEST: &str = include_str!("../../events/config-api/get-tenant-settings.json");

    fn systems() -> TenantSystems {
        TenantSystems::parse("1example23456789abcdefghij=acme-events:event_manager")
            .expect("mapping")
    }

    fn event(text: &str) -> PreTokenGenerationEvent {
        serde_json::from_str(text).expect("sample event")
    }

    /// What the JWT authorizer passes to a function: every claim of the access token Cognito
    /// would issue for this answered event, as strings, next to the ones Cognito always sets.
    fn authorized_request(answered: &Value, subject: &str) -> lambda_http::Request {
        let added = &answered["response"]["claimsAndScopeOverrideDetails"]["accessTokenGeneration"]
            ["claimsToAddOrOverride"];
        let mut claims = json!({
            "sub": subject,
            "iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_EXAMPLE",
            "client_id": answered["callerContext"]["clientId"],
            "token_use": "access",
            "scope": "herald/api",
            "iat": "1795341000",
            "exp": "1795344600",
        });
        for (name, value) in added.as_object().expect("claims added") {
            let text = value.as_str().expect("Herald claims are strings");
            claims[name] = Value::from(text);
        }
        let mut request: Value = serde_json::from_str(API_REQUEST).expect("API sample");
        request["requestContext"]["authorizer"]["jwt"]["claims"] = claims;
        from_str(&request.to_string()).expect("API Gateway request")
    }

    #[test]
    fn a_user_sign_in_reaches_herald_as_their_tenant_and_role() {
        for sample in [USER_V3, USER_V2] {
            let answered = handle(event(sample), &systems()).expect("token issued");
            let answered = serde_json::to_value(&answered).expect("answer");
            let details = &answered["response"]["claimsAndScopeOverrideDetails"];
            for token in ["accessTokenGeneration", "idTokenGeneration"] {
                assert_eq!(
                    details[token]["claimsToAddOrOverride"],
                    json!({"herald:tenant": "acme-events", "herald:role": "tenant_admin"}),
                    "{token}"
                );
            }
            let sub = answered["request"]["userAttributes"]["sub"]
                .as_str()
                .expect("sub")
                .to_owned();
            let request = authorized_request(&answered, &sub);
            assert_eq!(
                caller(&request).expect("Herald accepts the claims"),
                Caller {
                    subject: sub,
                    role: Role::TenantAdmin,
                    tenant: TenantId::parse("acme-events").ok(),
                }
            );
        }
    }

    #[test]
    fn a_tenant_system_token_reaches_herald_as_its_mapped_tenant() {
        let answered = handle(event(CLIENT_CREDENTIALS_V3), &systems()).expect("token issued");
        let answered = serde_json::to_value(&answered).expect("answer");
        let details = &answered["response"]["claimsAndScopeOverrideDetails"];
        assert_eq!(
            details["accessTokenGeneration"]["claimsToAddOrOverride"],
            json!({"herald:tenant": "acme-events", "herald:role": "event_manager"})
        );
        // Client credentials issue no ID token.
        assert!(details.get("idTokenGeneration").is_none());
        // In a client credentials token, `sub` is the app client id.
        let request = authorized_request(&answered, "1example23456789abcdefghij");
        assert_eq!(
            caller(&request).expect("Herald accepts the claims"),
            Caller {
                subject: "1example23456789abcdefghij".into(),
                role: Role::EventManager,
                tenant: TenantId::parse("acme-events").ok(),
            }
        );
    }

    #[test]
    fn the_answer_keeps_what_cognito_sent() {
        let sent: Value = serde_json::from_str(USER_V3).expect("sample");
        let answered = handle(event(USER_V3), &systems()).expect("token issued");
        let mut answered = serde_json::to_value(&answered).expect("answer");
        answered["response"] = sent["response"].clone();
        assert_eq!(answered, sent);
    }

    #[test]
    fn an_unmapped_client_gets_no_token() {
        let mut machine = event(CLIENT_CREDENTIALS_V3);
        machine.caller_context.client_id = "7another0client1id2abcdefg".into();
        assert_eq!(
            handle(machine, &systems()),
            Err(TriggerError::Refused(Refused::UnknownClient))
        );
        // The user attributes of a client credentials event are never read, whatever they say.
        let mut machine = event(CLIENT_CREDENTIALS_V3);
        machine.caller_context.client_id = "7another0client1id2abcdefg".into();
        machine.request.user_attributes.extend([
            ("custom:tenant".to_owned(), "acme-events".to_owned()),
            ("custom:role".to_owned(), "tenant_admin".to_owned()),
        ]);
        assert!(handle(machine, &systems()).is_err());
    }

    #[test]
    fn a_user_without_tenant_or_with_an_unknown_role_gets_no_token() {
        let mut user = event(USER_V3);
        user.request.user_attributes.remove("custom:tenant");
        assert_eq!(
            handle(user, &systems()),
            Err(TriggerError::Refused(Refused::NoTenant))
        );
        let mut user = event(USER_V3);
        user.request
            .user_attributes
            .insert("custom:role".into(), "owner".into());
        assert_eq!(
            handle(user, &systems()),
            Err(TriggerError::Refused(Refused::UnknownRole))
        );
        // A user signing in through a mapped client is still judged by their own attributes.
        let mut user = event(USER_V3);
        user.caller_context.client_id = "1example23456789abcdefghij".into();
        user.request.user_attributes.remove("custom:role");
        assert_eq!(
            handle(user, &systems()),
            Err(TriggerError::Refused(Refused::NoRole))
        );
    }

    #[test]
    fn a_version_1_event_is_refused() {
        let mut user = event(USER_V3);
        user.version = "1".into();
        assert_eq!(
            handle(user, &systems()),
            Err(TriggerError::UnsupportedVersion("1".into()))
        );
    }
}
