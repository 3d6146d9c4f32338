//! Every route of Herald's HTTP API in one table: its key as API Gateway matches it and the
//! function that serves it. The handlers dispatch on [`RouteId`], the OpenAPI document is built
//! from it (`api::contract`), and a test holds it equal to the SAM template's routes.
//!
//! Adding a route: one line here; the compiler then asks for its contract entry
//! (`api::contract::operation`) and the handler's match arm; the contract tests name the
//! template event and the regenerated `docs/openapi.json` still missing.

/// The Lambda functions that serve HTTP routes (their binary names in the SAM template).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    ConfigApi,
    ConfigResolution,
    WizardCompletion,
    SendApi,
    DeliveryWebhooks,
    PreferenceCentre,
}

impl Function {
    pub const fn binary(self) -> &'static str {
        match self {
            Function::ConfigApi => "config-api",
            Function::ConfigResolution => "config-resolution",
            Function::WizardCompletion => "wizard-completion",
            Function::SendApi => "send-api",
            Function::DeliveryWebhooks => "delivery-webhooks",
            Function::PreferenceCentre => "preference-centre",
        }
    }
}

macro_rules! routes {
    ($( $function:ident { $( $variant:ident = $key:literal, )+ } )+) => {
        /// One route of the HTTP API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RouteId {
            $( $( $variant, )+ )+
        }

        impl RouteId {
            /// Every route, in table order.
            pub const ALL: &[RouteId] = &[$( $( RouteId::$variant, )+ )+];

            /// The route key: `METHOD /path/{param}`, as in the template and API Gateway's event.
            pub const fn key(self) -> &'static str {
                match self { $( $( RouteId::$variant => $key, )+ )+ }
            }

            pub const fn function(self) -> Function {
                match self { $( $( RouteId::$variant => Function::$function, )+ )+ }
            }

            /// The variant's name (`ListTenantProviders`), the operation's id in the contract.
            pub const fn name(self) -> &'static str {
                match self { $( $( RouteId::$variant => stringify!($variant), )+ )+ }
            }
        }
    };
}

routes! {
    ConfigApi {
        ListTenantProviders = "GET /tenant/providers",
        CreateTenantProvider = "POST /tenant/providers",
        GetTenantProvider = "GET /tenant/providers/{providerId}",
        PutTenantProvider = "PUT /tenant/providers/{providerId}",
        DeleteTenantProvider = "DELETE /tenant/providers/{providerId}",
        TestTenantProvider = "POST /tenant/providers/{providerId}/test",
        ListEventProviders = "GET /events/{eventId}/providers",
        CreateEventProvider = "POST /events/{eventId}/providers",
        GetEventProvider = "GET /events/{eventId}/providers/{providerId}",
        PutEventProvider = "PUT /events/{eventId}/providers/{providerId}",
        DeleteEventProvider = "DELETE /events/{eventId}/providers/{providerId}",
        TestEventProvider = "POST /events/{eventId}/providers/{providerId}/test",
        ListPlatformTemplates = "GET /platform/templates",
        GetPlatformTemplate = "GET /platform/templates/{category}/{channel}",
        PutPlatformTemplate = "PUT /platform/templates/{category}/{channel}",
        DeletePlatformTemplate = "DELETE /platform/templates/{category}/{channel}",
        PreviewPlatformTemplate = "POST /platform/templates/{category}/{channel}/preview",
        ListPlatformTemplateVersions = "GET /platform/templates/{category}/{channel}/versions",
        ApprovePlatformTemplate = "POST /platform/templates/{category}/{channel}/versions/{version}/approve",
        RejectPlatformTemplate = "POST /platform/templates/{category}/{channel}/versions/{version}/reject",
        ListTenantTemplates = "GET /tenant/templates",
        GetTenantTemplate = "GET /tenant/templates/{category}/{channel}",
        PutTenantTemplate = "PUT /tenant/templates/{category}/{channel}",
        DeleteTenantTemplate = "DELETE /tenant/templates/{category}/{channel}",
        PreviewTenantTemplate = "POST /tenant/templates/{category}/{channel}/preview",
        ListTenantTemplateVersions = "GET /tenant/templates/{category}/{channel}/versions",
        ApproveTenantTemplate = "POST /tenant/templates/{category}/{channel}/versions/{version}/approve",
        RejectTenantTemplate = "POST /tenant/templates/{category}/{channel}/versions/{version}/reject",
        ListEventTemplates = "GET /events/{eventId}/templates",
        GetEventTemplate = "GET /events/{eventId}/templates/{category}/{channel}",
        PutEventTemplate = "PUT /events/{eventId}/templates/{category}/{channel}",
        DeleteEventTemplate = "DELETE /events/{eventId}/templates/{category}/{channel}",
        PreviewEventTemplate = "POST /events/{eventId}/templates/{category}/{channel}/preview",
        ListEventTemplateVersions = "GET /events/{eventId}/templates/{category}/{channel}/versions",
        ApproveEventTemplate = "POST /events/{eventId}/templates/{category}/{channel}/versions/{version}/approve",
        RejectEventTemplate = "POST /events/{eventId}/templates/{category}/{channel}/versions/{version}/reject",
        GetTenantBrand = "GET /tenant/brand",
        PutTenantBrand = "PUT /tenant/brand",
        GetEventBrand = "GET /events/{eventId}/brand",
        PutEventBrand = "PUT /events/{eventId}/brand",
        DeleteEventBrand = "DELETE /events/{eventId}/brand",
        GetEventSettings = "GET /events/{eventId}/settings",
        PutEventSettings = "PUT /events/{eventId}/settings",
        ListWebhookEndpoints = "GET /tenant/webhook-endpoints",
        CreateWebhookEndpoint = "POST /tenant/webhook-endpoints",
        GetWebhookEndpoint = "GET /tenant/webhook-endpoints/{endpointId}",
        PutWebhookEndpoint = "PUT /tenant/webhook-endpoints/{endpointId}",
        DeleteWebhookEndpoint = "DELETE /tenant/webhook-endpoints/{endpointId}",
        RotateWebhookEndpointSecret = "POST /tenant/webhook-endpoints/{endpointId}/rotate-secret",
        GetTenantSettings = "GET /tenant/settings",
        PutTenantSettings = "PUT /tenant/settings",
        GetComplianceReport = "GET /tenant/reports/compliance",
        RecordRecipientConsent = "POST /tenant/recipients/consents",
        LookupRecipient = "POST /tenant/recipients/lookup",
        PutRecipientPreferences = "PUT /tenant/recipients/preferences",
        CreatePreferenceLink = "POST /tenant/recipients/preference-link",
        ExportRecipient = "POST /tenant/recipients/export",
        EraseRecipient = "POST /tenant/recipients/erase",
    }
    ConfigResolution {
        GetEventConfiguration = "GET /events/{eventId}/configuration",
    }
    WizardCompletion {
        CompleteWizard = "POST /events/{eventId}/wizard/complete",
        ListSnapshots = "GET /events/{eventId}/snapshots",
        GetSnapshot = "GET /events/{eventId}/snapshots/{version}",
        ActivateSnapshot = "POST /events/{eventId}/snapshots/{version}/activate",
        CheckWhatsappTemplates = "GET /events/{eventId}/whatsapp-templates",
    }
    SendApi {
        SendMessage = "POST /events/{eventId}/messages",
        SendBatch = "POST /events/{eventId}/messages/batch",
        TriggerBusinessEvent = "POST /events/{eventId}/triggers/{eventType}",
        GetMessage = "GET /events/{eventId}/messages/{messageId}",
        ListMessages = "GET /events/{eventId}/messages",
        TestEventTemplate = "POST /events/{eventId}/templates/{category}/{channel}/test",
    }
    DeliveryWebhooks {
        TwilioReceipts = "POST /webhooks/twilio/{token}",
        SesReceipts = "POST /webhooks/ses/{token}",
        MetaReceipts = "POST /webhooks/meta/{token}",
        MetaVerification = "GET /webhooks/meta/{token}",
        AfricasTalkingReceipts = "POST /webhooks/africastalking/{token}",
        BrevoReceipts = "POST /webhooks/brevo/{token}",
    }
    PreferenceCentre {
        GetPreferences = "GET /preferences/{token}",
        PutPreferences = "PUT /preferences/{token}",
        SavePreferencesForm = "POST /preferences/{token}",
        OneClickUnsubscribe = "POST /preferences/{token}/unsubscribe",
    }
}

impl RouteId {
    /// The route with this key, if Herald serves it.
    pub fn from_key(key: &str) -> Option<RouteId> {
        RouteId::ALL.iter().copied().find(|r| r.key() == key)
    }

    pub fn method(self) -> &'static str {
        self.key().split_once(' ').map_or("", |(m, _)| m)
    }

    pub fn path(self) -> &'static str {
        self.key().split_once(' ').map_or("", |(_, p)| p)
    }

    /// Reached without a token (`Auth: {Authorizer: NONE}` in the template): provider webhooks,
    /// which authenticate by signature, and the preference centre, by its signed link.
    pub fn public(self) -> bool {
        matches!(
            self.function(),
            Function::DeliveryWebhooks | Function::PreferenceCentre
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::RouteId;

    #[test]
    fn keys_are_unique_and_well_formed() {
        let keys: BTreeSet<_> = RouteId::ALL.iter().map(|r| r.key()).collect();
        assert_eq!(keys.len(), RouteId::ALL.len());
        for route in RouteId::ALL {
            assert!(
                ["GET", "POST", "PUT", "DELETE"].contains(&route.method()),
                "{route:?}"
            );
            assert!(route.path().starts_with('/'), "{route:?}");
            assert_eq!(RouteId::from_key(route.key()), Some(*route));
        }
        assert_eq!(RouteId::from_key("GET /nowhere"), None);
    }
}
