//! The error catalogue: every machine-readable code Herald's HTTP API answers with, in one enum,
//! each with the status it is answered with and a line for the people who read the contract.
//! Handlers, field checks and wizard problems name their codes from here; the OpenAPI document
//! lists them all.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! catalogue {
    ($( #[doc = $doc:literal] $variant:ident = ($code:literal, $status:expr); )+) => {
        /// A machine-readable error code, serialized as its snake_case name (`concurrent_change`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
        pub enum ErrorCode {
            $( #[doc = $doc] #[serde(rename = $code)] $variant, )+
        }

        impl ErrorCode {
            /// Every code, in catalogue order.
            pub const ALL: &[ErrorCode] = &[$( ErrorCode::$variant ),+];

            pub const fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )+ }
            }

            /// The HTTP status a response carrying this code has; `None` for codes that only
            /// appear inside a response's `problems` (what wizard validation found).
            pub const fn status(self) -> Option<u16> {
                match self { $( ErrorCode::$variant => $status, )+ }
            }

            /// One line on what the code means and what the caller can do about it.
            pub fn description(self) -> &'static str {
                match self { $( ErrorCode::$variant => $doc.trim(), )+ }
            }
        }
    };
}

catalogue! {
    // 400: the request, field by field (`field` names the offending one).
    /// A value is not valid for its field (wrong type, shape or format).
    Invalid = ("invalid", Some(400));
    /// A required value is missing.
    Required = ("required", Some(400));
    /// A text is longer than its field allows.
    TooLong = ("too_long", Some(400));
    /// A list has more items than its field allows.
    TooMany = ("too_many", Some(400));
    /// A number is outside its field's range.
    OutOfRange = ("out_of_range", Some(400));
    /// The object has a field its kind does not take (e.g. a credential a provider does not use).
    UnknownField = ("unknown_field", Some(400));
    /// The field is not allowed here (e.g. a subject on an SMS template).
    NotAllowed = ("not_allowed", Some(400));
    /// The name or value is reserved for Herald's own use.
    Reserved = ("reserved", Some(400));
    /// The same name is given twice.
    Duplicate = ("duplicate", Some(400));
    /// Consent evidence names the recipient's address; give a reference instead.
    ContainsAddress = ("contains_address", Some(400));
    /// The category is transactional: recipients cannot opt out of it.
    NotOptional = ("not_optional", Some(400));
    /// The URL is not an absolute URL with a host.
    InvalidUrl = ("invalid_url", Some(400));
    /// The URL carries a user name or password.
    CredentialsInUrl = ("credentials_in_url", Some(400));
    /// The URL does not use https.
    InsecureUrl = ("insecure_url", Some(400));
    /// The URL names a private, loopback or link-local host.
    PrivateAddress = ("private_address", Some(400));
    /// No status webhook event type has this name.
    UnknownEventType = ("unknown_event_type", Some(400));
    /// The report period is not a valid range (its end is before its start).
    InvalidPeriod = ("invalid_period", Some(400));
    /// The report period is longer than a report covers.
    PeriodTooLong = ("period_too_long", Some(400));
    /// The event has no trigger of that name.
    UnknownTrigger = ("unknown_trigger", Some(400));
    /// The category or channel is not in use by the event.
    NotInUse = ("not_in_use", Some(400));
    /// The channel or feature is not available yet.
    NotSupported = ("not_supported", Some(400));
    /// A variable is given that the template does not declare.
    UnknownVariable = ("unknown_variable", Some(400));
    /// A variable the template needs is not given.
    MissingVariable = ("missing_variable", Some(400));
    /// A provider's webhook request could not be read.
    Malformed = ("malformed", Some(400));
    // 401 and 403: who is calling.
    /// No verified identity, or its claims are incomplete (`sub`, `herald:role`, `herald:tenant`).
    Unauthenticated = ("unauthenticated", Some(401));
    /// A provider's webhook request is older than the signature tolerance.
    Stale = ("stale", Some(401));
    /// The preference link is not one Herald made, or it was changed.
    PreferenceLinkInvalid = ("preference_link_invalid", Some(401));
    /// The caller's role or tenant may not do this.
    Forbidden = ("forbidden", Some(403));
    /// The preference link has expired; the recipient uses the link in a newer message.
    PreferenceLinkExpired = ("preference_link_expired", Some(403));
    /// Four eyes: a template version is approved by someone other than its author.
    FourEyes = ("four_eyes", Some(403));
    // 404
    /// The resource (or the route) does not exist for this caller.
    NotFound = ("not_found", Some(404));
    // 409: the state changed under the request; read again and retry.
    /// The resource changed since it was read; read it again and retry.
    ConcurrentChange = ("concurrent_change", Some(409));
    /// Another completion of this event finished first; read the snapshots and retry.
    ConcurrentCompletion = ("concurrent_completion", Some(409));
    /// The active snapshot changed meanwhile; read the snapshots and retry.
    ConcurrentActivation = ("concurrent_activation", Some(409));
    /// A request with this Idempotency-Key is still running; retry it later.
    RequestInProgress = ("request_in_progress", Some(409));
    /// Part of the recipient's data is still being dispatched; repeat the request shortly.
    ErasureIncomplete = ("erasure_incomplete", Some(409));
    /// Only a template version waiting for review (submitted) can be approved or rejected.
    NotSubmitted = ("not_submitted", Some(409));
    // 413
    /// The request body is larger than the API takes.
    PayloadTooLarge = ("payload_too_large", Some(413));
    // 422: well-formed, but Herald cannot do it.
    /// What would be stored is larger than a record holds.
    TooLarge = ("too_large", Some(422));
    /// A template is too large to render within Herald's bounds (size, output or steps).
    TemplateTooLarge = ("template_too_large", Some(422));
    /// A template does not compile or render; the problem carries its line and column.
    TemplateInvalid = ("template_invalid", Some(422));
    /// The event configuration is not complete; `problems` lists what is missing.
    ConfigurationInvalid = ("configuration_invalid", Some(422));
    /// This Idempotency-Key was used for a different request.
    IdempotencyKeyReused = ("idempotency_key_reused", Some(422));
    /// The report is larger than the API answers; narrow the period or use the operator CLI.
    ReportTooLarge = ("report_too_large", Some(422));
    /// The tenant has as many webhook endpoints as it may have.
    TooManyEndpoints = ("too_many_endpoints", Some(422));
    /// The recipient opted out of this channel (an opt-out keyword).
    RecipientOptedOut = ("recipient_opted_out", Some(422));
    /// The recipient is suppressed on this channel (hard bounce or complaint).
    RecipientSuppressed = ("recipient_suppressed", Some(422));
    /// The recipient withdrew consent to this category on this channel.
    RecipientWithdrewConsent = ("recipient_withdrew_consent", Some(422));
    /// The recipient opted out of this category.
    RecipientOptedOutOfCategory = ("recipient_opted_out_of_category", Some(422));
    /// The recipient opted out of this channel in their preferences.
    RecipientOptedOutOfChannel = ("recipient_opted_out_of_channel", Some(422));
    /// The recipient is in their quiet hours and the message cannot wait (a test send).
    QuietHours = ("quiet_hours", Some(422));
    // 429
    /// The tenant's quota for this operation is used up; retry after `Retry-After` seconds.
    QuotaExceeded = ("quota_exceeded", Some(429));
    // 5xx
    /// Something went wrong on Herald's side; the body says nothing more.
    Internal = ("internal", Some(500));
    /// A dependency was unavailable; the provider retries its webhook.
    Unavailable = ("unavailable", Some(503));
    // Only inside `problems` of a 422 `configuration_invalid` (wizard validation).
    /// The event uses no channel.
    NoChannels = ("no_channels", None);
    /// The event uses no message category.
    NoCategories = ("no_categories", None);
    /// A category and channel in use has no template at any layer.
    TemplateMissing = ("template_missing", None);
    /// A template version the event uses waits for a second person's approval: approve or reject it first.
    TemplatePendingApproval = ("template_pending_approval", None);
    /// A channel in use has no active provider.
    ProviderMissing = ("provider_missing", None);
    /// Marketing email is in use but the brand lacks the sender's legal name or postal address.
    ComplianceBlockMissing = ("compliance_block_missing", None);
    /// A WhatsApp template the event uses is not approved (or not found) at the provider that would send it.
    WhatsappTemplateNotApproved = ("whatsapp_template_not_approved", None);
    /// A WhatsApp template has no template registered with one of the event's WhatsApp providers.
    WhatsappTemplateUnregistered = ("whatsapp_template_unregistered", None);
    /// The provider refused the credentials in a live test.
    ProviderCredentialsRejected = ("provider_credentials_rejected", None);
    /// The provider could not be reached in a live test.
    ProviderUnreachable = ("provider_unreachable", None);
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for ErrorCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::ErrorCode;

    #[test]
    fn codes_are_unique_snake_case_and_serialize_as_their_name() {
        let names: BTreeSet<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        for code in ErrorCode::ALL {
            let name = code.as_str();
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert_eq!(serde_json::to_value(code).ok(), Some(name.into()));
            assert_eq!(
                serde_json::from_value::<ErrorCode>(name.into()).ok(),
                Some(*code)
            );
            assert!(!code.description().is_empty() && !code.description().contains('\n'));
            assert!(code.status().is_none_or(|s| (400..600).contains(&s)));
        }
        assert_eq!(ErrorCode::QuotaExceeded.status(), Some(429));
    }
}
