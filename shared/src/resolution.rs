//! Loading an event's configuration layers and resolving them: the one function every Lambda
//! uses to see an event's providers, templates and brand. Each layer partition is read with one
//! Query, all five concurrently, whatever the number of providers or templates.

use crate::domain::resolution::{
    ConfigurationLayers, Layer, PendingReview, ResolvedConfiguration, resolve,
};
use crate::domain::{EventId, TenantId};
use crate::store::{Owner, ProviderStore, StoreResult, TemplateStore};

/// The stored layers of `event`, or `None` when the tenant has no such event (no settings saved).
pub async fn load_layers(
    providers: &dyn ProviderStore,
    templates: &dyn TemplateStore,
    tenant: &TenantId,
    event: &EventId,
) -> StoreResult<Option<ConfigurationLayers>> {
    let (tenant_owner, event_owner) = (
        Owner::Tenant(tenant.clone()),
        Owner::Event(tenant.clone(), event.clone()),
    );
    let (tenant_providers, event_providers, global, tenant_layer, event_layer) = tokio::try_join!(
        providers.tenant_providers(tenant),
        providers.event_providers(tenant, event),
        templates.layer(&Owner::Platform),
        templates.layer(&tenant_owner),
        templates.layer(&event_owner),
    )?;
    let Some(settings) = event_layer.settings else {
        return Ok(None);
    };
    // The tenant's own reviews only: a platform template waiting for a second platform admin
    // is not the tenant's to approve, and the published one stays in use meanwhile.
    let pending = [
        (Layer::Tenant, &tenant_layer.pending),
        (Layer::Event, &event_layer.pending),
    ]
    .into_iter()
    .flat_map(|(layer, versions)| versions.iter().map(move |t| PendingReview::of(layer, t)))
    .collect();
    Ok(Some(ConfigurationLayers {
        tenant: tenant.clone(),
        event: event.clone(),
        tenant_providers,
        event_providers,
        global_templates: global.templates,
        tenant_templates: tenant_layer.templates,
        event_templates: event_layer.templates,
        tenant_brand: tenant_layer.brand.map(|b| b.value).unwrap_or_default(),
        event_brand: event_layer.brand.map(|b| b.value).unwrap_or_default(),
        settings: settings.value,
        pending,
    }))
}

pub async fn resolve_event(
    providers: &dyn ProviderStore,
    templates: &dyn TemplateStore,
    tenant: &TenantId,
    event: &EventId,
) -> StoreResult<Option<ResolvedConfiguration>> {
    Ok(load_layers(providers, templates, tenant, event)
        .await?
        .as_ref()
        .map(resolve))
}

/// Replaces sealed credentials anywhere in an API payload with what callers may see: whether
/// they are set, and masked hints. Applied to every response that carries provider data.
pub fn redact_credentials(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(creds) = map.get_mut("credentials") {
                let hints = creds
                    .get("hints")
                    .cloned()
                    .unwrap_or_else(|| serde_json::json!({}));
                let configured = !creds.is_null();
                *creds = serde_json::json!({ "configured": configured, "hints": hints });
            }
            map.values_mut().for_each(redact_credentials);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_credentials),
        _ => {}
    }
}

/// The contract's schema of sealed credentials as [`redact_credentials`] leaves them: replaces
/// the stored `SealedCredentials` among a document's response schemas.
pub fn present_credentials_schema(schemas: &mut serde_json::Map<String, serde_json::Value>) {
    schemas.insert(
        "SealedCredentials".into(),
        serde_json::json!({
            "type": "object",
            "description": "Credentials are never returned: whether they are set, and a hint of each (its last characters).",
            "required": ["configured", "hints"],
            "properties": {
                "configured": {"type": "boolean"},
                "hints": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_credentials_never_leave() {
        let mut v = serde_json::json!({"providers": [{"id": "p", "credentials": {
            "encrypted_data_key": "AAA", "nonce": "BBB", "ciphertext": "CCC", "hints": {"api_key": "…1234"}}}]});
        redact_credentials(&mut v);
        let text = v.to_string();
        assert!(!text.contains("CCC") && !text.contains("AAA"));
        assert_eq!(
            v["providers"][0]["credentials"]["hints"]["api_key"],
            "…1234"
        );
        assert_eq!(v["providers"][0]["credentials"]["configured"], true);
    }
}
