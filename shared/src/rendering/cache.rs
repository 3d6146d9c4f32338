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

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::template::{TemplateContent, VariableDecl};
    use crate::rendering::Compliance;

    fn key(tenant: &str, version: u32) -> TemplateKey {
        TemplateKey {
            tenant: tenant.parse().expect("tenant"),
            event: "gala-2026".parse().expect("event"),
            snapshot_version: version,
            category: Category::Invitation,
            channel: Channel::Sms,
        }
    }

    #[test]
    fn a_template_compiles_once_per_tenant_and_snapshot_version() {
        let content = TemplateContent {
            subject: None,
            body: "Hi {{ guest_name }}".into(),
            variables: vec![VariableDecl::text("guest_name", "Ada")],
            brand_assets: BTreeMap::new(),
            design_settings: BTreeMap::new(),
            whatsapp: None,
        };
        let cache = TemplateCache::new(8);
        let compiled = Cell::new(0);
        let get = |k: &TemplateKey| {
            cache
                .get_or_compile(k, || {
                    compiled.set(compiled.get() + 1);
                    Template::compile(Channel::Sms, Compliance::None, &content, &BTreeMap::new())
                })
                .expect("compiles")
        };
        let first = get(&key("acme", 1));
        let again = get(&key("acme", 1));
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(compiled.get(), 1);
        // Another tenant, or a new snapshot version, never shares the compiled template.
        let other = get(&key("globex", 1));
        let next = get(&key("acme", 2));
        assert!(!Arc::ptr_eq(&first, &other) && !Arc::ptr_eq(&first, &next));
        assert_eq!((compiled.get(), cache.len()), (3, 3));
        // A failure is not kept: the next use compiles again.
        let broken = TemplateContent {
            body: "{{ unclosed".into(),
            ..content.clone()
        };
        for _ in 0..2 {
            assert!(
                cache
                    .get_or_compile(&key("acme", 3), || {
                        Template::compile(Channel::Sms, Compliance::None, &broken, &BTreeMap::new())
                    })
                    .is_err()
            );
        }
        assert_eq!(cache.len(), 3);
    }
}
