//! A local HTTP API that behaves like API Gateway's HTTP API in front of Herald's functions:
//! routes and CORS read from the SAM template, bearer JWTs verified as the JWT authorizer does,
//! API Gateway v2 events to the functions under `cargo lambda watch`; and the development token
//! issuer whose keys it serves.

pub mod authorizer;
pub mod cors;
pub mod event;
pub mod issuer;
pub mod routes;
pub mod server;
pub mod template;

pub use server::{GatewayConfig, RunningGateway, serve};

/// Where a running gateway tells local tools (`herald dev-token`) its issuer and audience.
pub const DEFAULT_STATE_FILE: &str = ".local/gateway/gateway.json";
