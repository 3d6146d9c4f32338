//! Herald's shared library: the domain, configuration resolution, rendering, wizard completion,
//! the providers, the storage ports with their adapters, and the HTTP APIs the functions serve.

pub mod api;
pub mod app;
pub mod audit;
pub mod audit_anchors;
pub mod credentials;
pub mod data_subject;
pub mod dispatch;
pub mod domain;
pub mod fanout;
pub mod http;
pub mod observability;
pub mod pre_token_generation;
pub mod preference_links;
pub mod providers;
pub mod receipts;
pub mod recipient_gate;
pub mod recipient_keys;
pub mod redrive;
pub mod rendering;
pub mod reports;
pub mod resolution;
pub mod retention;
pub mod status_webhooks;
pub mod store;
pub mod wizard;

pub use app::App;
