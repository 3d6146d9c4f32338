//! Herald's own status webhooks to tenant systems. Whatever changes a message's status (dispatch,
//! a delivery receipt) hands the change to a [`StatusEventSink`]; the AWS sink queues one
//! delivery per interested endpoint on an SQS queue, and the status-webhooks worker posts each,
//! signed (see [`signature`]), with retries.

pub mod queue;
pub mod signature;
pub mod worker;

use std::sync::Mutex;

use async_trait::async_trait;

use crate::domain::status_event::StatusEvent;

pub use queue::{Delivery, SqsStatusEvents};
pub use signature::{SignatureError, new_secret, retry_delay, retry_delay_in, sign, verify};

/// Where status changes go to be told to tenants.
#[async_trait]
pub trait StatusEventSink: Send + Sync {
    /// Queues `events` (all of one tenant) for every endpoint of that tenant that wants their
    /// type; endpoints that want none of them cost nothing. All or an error: a retried publish
    /// is harmless because an event's id is derived from the change it reports.
    async fn publish(&self, events: &[StatusEvent]) -> anyhow::Result<()>;
}

/// Keeps published events in memory: logic tests read them back.
#[derive(Debug, Default)]
pub struct MemoryStatusEvents {
    events: Mutex<Vec<StatusEvent>>,
}

impl MemoryStatusEvents {
    pub fn published(&self) -> Vec<StatusEvent> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl StatusEventSink for MemoryStatusEvents {
    async fn publish(&self, events: &[StatusEvent]) -> anyhow::Result<()> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(events);
        Ok(())
    }
}
