//! Injected failures: a per-provider queue that the next requests to that provider consume, one
//! fault per request, before any authentication or validation happens.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Provider;

/// What an injected fault does to the request that consumes it.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status and the provider's own error body for it (for 429 also a
    /// `Retry-After: 1` header); the request is not processed.
    Status(u16),
    /// Hold the request this long, then process it normally, so a client with a shorter
    /// timeout gives up first.
    Delay(Duration),
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Status(status) => write!(f, "Status({status})"),
            Fault::Delay(delay) => write!(f, "Delay({}ms)", delay.as_millis()),
        }
    }
}

/// JSON form: `{"status": 503}` or `{"delay_ms": 5000}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
}

impl Serialize for Fault {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let json = match *self {
            Fault::Status(status) => FaultJson {
                status: Some(status),
                delay_ms: None,
            },
            Fault::Delay(delay) => FaultJson {
                status: None,
                delay_ms: Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
            },
        };
        json.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Fault {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = FaultJson::deserialize(deserializer)?;
        Fault::from_parts(json.status, json.delay_ms).map_err(D::Error::custom)
    }
}

impl Fault {
    /// Builds a fault from the HTTP control API's optional fields; exactly one must be set.
    pub(crate) fn from_parts(status: Option<u16>, delay_ms: Option<u64>) -> Result<Fault, String> {
        match (status, delay_ms) {
            (Some(status), None) if (400..=599).contains(&status) => Ok(Fault::Status(status)),
            (Some(status), None) => {
                Err(format!("status {status} is not an error status (400-599)"))
            }
            (None, Some(ms)) => Ok(Fault::Delay(Duration::from_millis(ms))),
            _ => Err("give exactly one of status or delay_ms".to_owned()),
        }
    }
}

#[derive(Default)]
pub(crate) struct FaultQueue {
    pending: Mutex<HashMap<Provider, VecDeque<Fault>>>,
}

impl FaultQueue {
    fn pending(&self) -> MutexGuard<'_, HashMap<Provider, VecDeque<Fault>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `count` copies of `fault` behind any already pending for `provider`.
    pub(crate) fn push(&self, provider: Provider, count: usize, fault: Fault) -> usize {
        let mut pending = self.pending();
        let queue = pending.entry(provider).or_default();
        queue.extend(std::iter::repeat_n(fault, count));
        queue.len()
    }

    /// The fault the next request to `provider` must suffer, if any.
    pub(crate) fn take(&self, provider: Provider) -> Option<Fault> {
        self.pending()
            .get_mut(&provider)
            .and_then(VecDeque::pop_front)
    }

    pub(crate) fn len(&self, provider: Provider) -> usize {
        self.pending().get(&provider).map_or(0, VecDeque::len)
    }

    pub(crate) fn clear(&self) {
        self.pending().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form_round_trips() -> anyhow::Result<()> {
        for (fault, json) in [
            (Fault::Status(503), r#"{"status":503}"#),
            (
                Fault::Delay(Duration::from_millis(1500)),
                r#"{"delay_ms":1500}"#,
            ),
        ] {
            assert_eq!(serde_json::to_string(&fault)?, json);
            assert_eq!(serde_json::from_str::<Fault>(json)?, fault);
        }
        assert!(serde_json::from_str::<Fault>(r#"{"status":200}"#).is_err());
        assert!(serde_json::from_str::<Fault>(r#"{"status":500,"delay_ms":1}"#).is_err());
        assert!(serde_json::from_str::<Fault>(r#"{}"#).is_err());
        Ok(())
    }

    #[test]
    fn queue_is_per_provider_and_ordered() {
        let queue = FaultQueue::default();
        queue.push(Provider::Twilio, 2, Fault::Status(500));
        queue.push(Provider::Twilio, 1, Fault::Status(429));
        assert_eq!(queue.len(Provider::Twilio), 3);
        assert_eq!(queue.take(Provider::Brevo), None);
        assert_eq!(queue.take(Provider::Twilio), Some(Fault::Status(500)));
        assert_eq!(queue.take(Provider::Twilio), Some(Fault::Status(500)));
        assert_eq!(queue.take(Provider::Twilio), Some(Fault::Status(429)));
        assert_eq!(queue.take(Provider::Twilio), None);
    }
}
