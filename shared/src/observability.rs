//! Logging and request accounting. Logs are JSON lines with the span fields (request id, route,
//! ids), never secrets or personal data; Lambda's JSON log format and `AWS_LAMBDA_LOG_LEVEL` are
//! honoured. [`AwsRequestCounter`] counts the AWS calls a piece of work makes, for tests and
//! load runs that report "requests per resolution" or "requests per message".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// Installs the JSON subscriber once per process.
pub fn init() {
    lambda_http::tracing::init_default_subscriber();
}

/// An SDK interceptor counting requests put on the wire (retries included), by
/// `Service.Operation`, and remembering when each was on the wire (for [`round_trips`]).
/// Clones share one count.
///
/// [`round_trips`]: AwsRequestCounter::round_trips
#[derive(Debug, Clone, Default)]
pub struct AwsRequestCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    on_wire: Arc<Mutex<Vec<(Instant, Instant)>>>,
}

/// When the request of this attempt went on the wire.
#[derive(Debug, Clone, Copy)]
struct Transmitted(Instant);

impl Storable for Transmitted {
    type Storer = StoreReplace<Self>;
}

impl AwsRequestCounter {
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn reset(&self) {
        if let Ok(mut c) = self.counts.lock() {
            c.clear();
        }
        if let Ok(mut w) = self.on_wire.lock() {
            w.clear();
        }
    }

    /// Round trips on the critical path: the longest sequence of answered requests each sent
    /// after the one before it was answered (requests in flight together count once). This is
    /// what latency multiplies, whatever the number of requests.
    pub fn round_trips(&self) -> u64 {
        let mut spans = self.on_wire.lock().map(|w| w.clone()).unwrap_or_default();
        // Earliest end first, then take every span starting after the last one taken ended:
        // the most spans that do not overlap.
        spans.sort_by_key(|&(_, end)| end);
        let mut trips = 0;
        let mut free_from: Option<Instant> = None;
        for (start, end) in spans {
            if free_from.is_none_or(|f| start >= f) {
                trips += 1;
                free_from = Some(end);
            }
        }
        trips
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
        cfg.interceptor_state()
            .store_put(Transmitted(Instant::now()));
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(Transmitted(start)) = cfg.load::<Transmitted>().copied()
            && let Ok(mut w) = self.on_wire.lock()
        {
            w.push((start, Instant::now()));
        }
        Ok(())
    }
}
