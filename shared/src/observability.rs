//! Logging: JSON lines with the span fields (request id, route, ids), never secrets or personal
//! data. Lambda's JSON log format and `AWS_LAMBDA_LOG_LEVEL` are honoured.

/// Installs the JSON subscriber once per process.
pub fn init() {
    lambda_http::tracing::init_default_subscriber();
}
