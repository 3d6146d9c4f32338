//! Logging and request accounting. Logs are JSON lines with the span fields (request id, route,
//! ids), never secrets or personal data; Lambda's JSON log format and `AWS_LAMBDA_LOG_LEVEL` are
//! honoured. [`AwsRequestCounter`] counts the AWS calls a piece of work makes, for tests and
//! load runs that report "requests per resolution" or "requests per message".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Installs the JSON subscriber once per process.
pub fn init() {
    lambda_http::tracing::init_default_subscriber();
}

/// An SDK interceptor counting requests put on the wire (retries included), by
/// `Service.Operation`. Clones share one count.
#[derive(Debug, Clone, Default)]
pub struct AwsRequestCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl AwsRequestCounter {
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn reset(&self) {
        if let Ok(mut c) = self.counts.lock() {
            c.clear();
        }
    }

    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }
}

impl Intercept for AwsRequestCounter {
    fn name(&self) -> &'static str {
        "AwsRequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let key = cfg.load::<Metadata>().map_or_else(
            || "unknown".to_owned(),
            |m| format!("{}.{}", m.service(), m.name()),
        );
        if let Ok(mut c) = self.counts.lock() {
            *c.entry(key).or_default() += 1;
        }
        Ok(())
    }
}
