//! Compiled templates kept per container: compiling (parsing, checking, bounding, laying out
//! the brand) costs several times a rendering, and a snapshot's templates never change. Keyed by
//! tenant, event, snapshot version and slot, so nothing is shared across tenants and a new
//! snapshot version is compiled afresh; bounded, least recently used out first.

use std::sync::Arc;

use super::{RenderError, Template};
use crate::domain::{Category, Channel, EventId, TenantId};

/// Which template: a slot of one snapshot version of one tenant's event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TemplateKey {
    pub tenant: TenantId,
    pub event: EventId,
    pub snapshot_version: u32,
    pub category: Category,
    pub channel: Channel,
}

/// Most compiled templates one container keeps (a few kilobytes each).
pub const CAPACITY: usize = 1024;

#[derive(Debug)]
pub struct TemplateCache {
    compiled: quick_cache::sync::Cache<TemplateKey, Arc<Template>>,
}

impl Default for TemplateCache {
    fn default() -> Self {
        Self::new(CAPACITY)
    }
}

impl TemplateCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            compiled: quick_cache::sync::Cache::new(capacity),
        }
    }

    /// The compiled template for `key`, compiled by `compile` on first use. A failure is not
    /// kept (the next use tries again).
    pub fn get_or_compile(
        &self,
        key: &TemplateKey,
        compile: impl FnOnce() -> Result<Template, RenderError>,
    ) -> Result<Arc<Template>, RenderError> {
        self.compiled
            .get_or_insert_with(key, || compile().map(Arc::new))
    }

    /// How many templates are kept.
    pub fn len(&self) -> usize {
        self.compiled.len()
    }

    pub fn is_empty(&self) -> bool {
        self.compiled.is_empty()
    }
}
