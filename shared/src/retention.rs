//! How long a tenant's message records are kept, for the send path: the tenant's setting
//! (`PUT /tenant/settings`) or the platform default (`MESSAGE_RETENTION_DAYS`). Sends must not
//! pay a read per message, so each container remembers a tenant's answer for a minute: a
//! changed setting reaches every container within that minute, and applies to messages sent
//! from then on (records already written keep the expiry they were given).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::TenantId;
use crate::store::{StoreResult, TenantSettingsStore};

/// How long a container trusts what it read.
const FRESH_FOR: Duration = Duration::from_secs(60);
/// Tenants remembered at most (then the memory starts over).
const MAX_TENANTS: usize = 10_000;

pub struct MessageRetention {
    settings: Arc<dyn TenantSettingsStore>,
    default_days: u32,
    fresh_for: Duration,
    read: Mutex<HashMap<TenantId, (Instant, u32)>>,
}

impl std::fmt::Debug for MessageRetention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageRetention")
            .field("default_days", &self.default_days)
            .finish_non_exhaustive()
    }
}

impl MessageRetention {
    pub fn new(settings: Arc<dyn TenantSettingsStore>, default_days: u32) -> Self {
        Self::with_freshness(settings, default_days, FRESH_FOR)
    }

    pub fn with_freshness(
        settings: Arc<dyn TenantSettingsStore>,
        default_days: u32,
        fresh_for: Duration,
    ) -> Self {
        Self {
            settings,
            default_days,
            fresh_for,
            read: Mutex::new(HashMap::new()),
        }
    }

    /// The platform default, for tenants without a setting.
    pub fn default_days(&self) -> u32 {
        self.default_days
    }

    /// Days the tenant's message records are kept: at most one read per tenant a minute.
    pub async fn days(&self, tenant: &TenantId) -> StoreResult<u32> {
        if let Some(days) = self.remembered(tenant) {
            return Ok(days);
        }
        let days = self
            .settings
            .tenant_settings(tenant)
            .await?
            .map_or(self.default_days, |s| s.value.message_retention_days);
        if let Ok(mut read) = self.read.lock() {
            if read.len() >= MAX_TENANTS {
                read.clear();
            }
            read.insert(tenant.clone(), (Instant::now(), days));
        }
        Ok(days)
    }

    fn remembered(&self, tenant: &TenantId) -> Option<u32> {
        let read = self.read.lock().ok()?;
        read.get(tenant)
            .filter(|(at, _)| at.elapsed() < self.fresh_for)
            .map(|(_, days)| *days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::AuditEntry;
    use crate::domain::identity::{Caller, Role};
    use crate::domain::tenant_settings::TenantSettings;
    use crate::store::Revisioned;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn a_tenant_setting_wins_over_the_default_and_is_read_once_while_fresh() {
        let store = Arc::new(MemoryStore::default());
        let tenant = TenantId::parse("acme-events").expect("tenant");
        let retention = MessageRetention::new(store.clone(), 90);
        assert_eq!(retention.days(&tenant).await.expect("days"), 90);

        let caller = Caller {
            subject: "user-ada".into(),
            role: Role::TenantAdmin,
            tenant: Some(tenant.clone()),
        };
        let put = |days, revision| {
            let store = store.clone();
            let tenant = tenant.clone();
            let audit = AuditEntry::new(
                &caller,
                "r",
                "tenant.settings_updated",
                "tenant/settings".into(),
                None,
                None,
            );
            async move {
                store
                    .put_tenant_settings(
                        &tenant,
                        &Revisioned {
                            value: TenantSettings {
                                message_retention_days: days,
                                templates_need_approval: false,
                            },
                            revision,
                        },
                        &audit,
                    )
                    .await
                    .expect("stored");
            }
        };
        put(30, 1).await;
        // Still the remembered default within the minute; a fresh container reads the setting.
        assert_eq!(retention.days(&tenant).await.expect("days"), 90);
        let fresh = MessageRetention::with_freshness(store.clone(), 90, Duration::ZERO);
        assert_eq!(fresh.days(&tenant).await.expect("days"), 30);
        put(7, 2).await;
        assert_eq!(fresh.days(&tenant).await.expect("days"), 7);
    }
}
