//! Herald's business rules as pure types and functions: no AWS SDK, no Lambda, no I/O.
//! Everything here is parsed at the edge ("parse, don't validate") and safe to use afterwards.

pub mod audit;
pub mod brand;
pub mod catalogue;
pub mod consent;
pub mod cost;
pub mod erasure;
pub mod error_code;
pub mod identity;
pub mod ids;
pub mod locale;
pub mod message;
pub mod preference_link;
pub mod preferences;
pub mod provider;
pub mod receipt;
pub mod recipient;
pub mod report;
pub mod resolution;
pub mod routing;
pub mod sms;
pub mod snapshot;
pub mod status_event;
pub mod suppression;
pub mod template;
pub mod tenant_settings;
pub mod token_claims;
pub mod validation;
pub mod variable_type;
pub mod variables;
pub mod webhook_endpoint;
pub mod whatsapp;

pub use catalogue::{Category, CategoryClass, Channel};
pub use error_code::ErrorCode;
pub use ids::{EventId, ProviderId, TenantId};
