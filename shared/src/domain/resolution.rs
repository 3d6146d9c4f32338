//! Configuration resolution: the layers an event inherits (platform → tenant → event) merged into
//! one configuration, with the layer every value came from. Pure and deterministic: the same
//! layers in any order give the same result.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::brand::{BRAND_FIELDS, Brand};
use super::catalogue::{Category, Channel};
use super::ids::{EventId, ProviderId, TenantId};
use super::provider::{
    EventProviderEntry, ProviderConfig, ProviderKind, ProviderSettings, SealedCredentials,
};
use super::template::{TemplateContent, TemplateVersion};

/// A configuration layer, from the most general to the most specific.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Global,
    Tenant,
    Event,
}

/// A value and where it came from. `overrides` names the layer whose value this one replaced
/// ("overridden for event" when `source` is event and `overrides` is tenant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Sourced_{T}")]
pub struct Sourced<T> {
    pub value: T,
    pub source: Layer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<Layer>,
}

impl<T> Sourced<T> {
    fn from(value: T, source: Layer) -> Self {
        Self {
            value,
            source,
            overrides: None,
        }
    }
}

/// Which channels and categories an event uses: what wizard completion must find configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSettings {
    pub channels: BTreeSet<Channel>,
    pub categories: BTreeSet<Category>,
    /// Business events tenant systems raise (`loan.approved`, `guest.rsvp_confirmed`) and the
    /// category and channels each one sends.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub triggers: BTreeMap<String, TriggerRoute>,
    /// The language messages are formatted in when a send names none for its recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_locale: Option<super::locale::LocaleTag>,
    /// The time zone dates and times are shown in when a send names none (the venue's); UTC
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<super::locale::TimeZoneName>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerRoute {
    pub category: Category,
    pub channels: BTreeSet<Channel>,
}

impl EventSettings {
    /// Checks trigger names and that every trigger sends a category and channels in use.
    pub fn check(&self) -> Result<(), super::validation::FieldError> {
        use super::validation::FieldError;
        for (name, route) in &self.triggers {
            let field = format!("triggers.{name}");
            let valid_name = name.len() <= 64
                && name.starts_with(|c: char| c.is_ascii_lowercase())
                && name.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                });
            if !valid_name {
                return Err(FieldError::invalid(
                    field,
                    "trigger names are lower-case words joined by '.', '_' or '-'",
                ));
            }
            if !self.categories.contains(&route.category) {
                return Err(FieldError::invalid(
                    format!("{field}.category"),
                    format!("{} is not a category in use", route.category),
                ));
            }
            if route.channels.is_empty() {
                return Err(FieldError::required(format!("{field}.channels")));
            }
            if let Some(ch) = route.channels.iter().find(|ch| !self.channels.contains(ch)) {
                return Err(FieldError::invalid(
                    format!("{field}.channels"),
                    format!("{ch} is not a channel in use"),
                ));
            }
        }
        Ok(())
    }
}

/// Everything stored for one event's resolution, as read from the stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigurationLayers {
    pub tenant: TenantId,
    pub event: EventId,
    pub tenant_providers: Vec<ProviderConfig>,
    pub event_providers: Vec<EventProviderEntry>,
    pub global_templates: Vec<TemplateVersion>,
    pub tenant_templates: Vec<TemplateVersion>,
    pub event_templates: Vec<TemplateVersion>,
    pub tenant_brand: Brand,
    pub event_brand: Brand,
    pub settings: EventSettings,
    /// Template versions of the tenant and event layers waiting for a second person's review
    /// (the platform's reviews are its own business).
    pub pending: Vec<PendingReview>,
}

/// A template version submitted for review and not yet approved or rejected: not used until
/// approved, and a problem for the wizard's completion when its slot is in use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PendingReview {
    pub category: Category,
    pub channel: Channel,
    pub layer: Layer,
    pub version: u32,
    pub submitted_by: String,
}

impl PendingReview {
    pub fn of(layer: Layer, template: &TemplateVersion) -> Self {
        PendingReview {
            category: template.category,
            channel: template.channel,
            layer,
            version: template.version,
            submitted_by: template.created_by.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResolvedProvider {
    pub id: ProviderId,
    pub kind: ProviderKind,
    pub name: String,
    /// The layer that owns the provider account: tenant (inherited) or event (its own).
    pub source: Layer,
    pub settings: ProviderSettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<SealedCredentials>,
    pub priority: Sourced<u32>,
    pub weight: Sourced<u32>,
    pub active: Sourced<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_second: Option<u32>,
    /// The opaque token of the configuration's receipt URL: dispatch asks providers that take
    /// a per-message callback URL (Twilio) to report there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResolvedChannel {
    /// True when the event changed anything about this channel's providers.
    pub customized: bool,
    /// In the order dispatch tries them: priority, then id.
    pub providers: Vec<ResolvedProvider>,
}

impl ResolvedChannel {
    pub fn active(&self) -> impl Iterator<Item = &ResolvedProvider> {
        self.providers.iter().filter(|p| p.active.value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResolvedTemplate {
    pub category: Category,
    pub channel: Channel,
    pub version: u32,
    pub source: Layer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<Layer>,
    #[serde(flatten)]
    pub content: TemplateContent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResolvedConfiguration {
    pub tenant: TenantId,
    pub event: EventId,
    pub settings: EventSettings,
    pub channels: BTreeMap<Channel, ResolvedChannel>,
    pub templates: Vec<ResolvedTemplate>,
    pub brand: BTreeMap<String, Sourced<String>>,
    /// Versions waiting for review in the slots the event uses (completion refuses while any
    /// does; a snapshot never has one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_review: Vec<PendingReview>,
}

impl ResolvedConfiguration {
    pub fn template(&self, category: Category, channel: Channel) -> Option<&ResolvedTemplate> {
        self.templates
            .iter()
            .find(|t| t.category == category && t.channel == channel)
    }

    /// The merged brand as plain values, for rendering.
    pub fn brand_values(&self) -> BTreeMap<&str, &str> {
        self.brand
            .iter()
            .map(|(k, v)| (k.as_str(), v.value.as_str()))
            .collect()
    }
}

/// Merges the layers. Event values win over tenant values, tenant over global; removing an event
/// value lets the tenant's show through again.
pub fn resolve(layers: &ConfigurationLayers) -> ResolvedConfiguration {
    ResolvedConfiguration {
        tenant: layers.tenant.clone(),
        event: layers.event.clone(),
        settings: layers.settings.clone(),
        channels: resolve_providers(&layers.tenant_providers, &layers.event_providers),
        templates: resolve_templates(
            &layers.global_templates,
            &layers.tenant_templates,
            &layers.event_templates,
        ),
        brand: resolve_brand(&layers.tenant_brand, &layers.event_brand),
        pending_review: layers
            .pending
            .iter()
            .filter(|p| {
                layers.settings.channels.contains(&p.channel)
                    && layers.settings.categories.contains(&p.category)
            })
            .cloned()
            .collect(),
    }
}

fn resolve_providers(
    tenant: &[ProviderConfig],
    event: &[EventProviderEntry],
) -> BTreeMap<Channel, ResolvedChannel> {
    let overrides: BTreeMap<&ProviderId, _> = event
        .iter()
        .filter_map(|e| match e {
            EventProviderEntry::Override(o) => Some((&o.provider, o)),
            EventProviderEntry::Own(_) => None,
        })
        .collect();
    let mut channels: BTreeMap<Channel, ResolvedChannel> = BTreeMap::new();
    let mut push = |channel: Channel, provider: ResolvedProvider, customized: bool| {
        let entry = channels.entry(channel).or_insert_with(|| ResolvedChannel {
            customized: false,
            providers: Vec::new(),
        });
        entry.customized |= customized;
        entry.providers.push(provider);
    };
    for p in tenant {
        let o = overrides.get(&p.id);
        fn field<T>(tenant_value: T, event_value: Option<T>) -> Sourced<T> {
            match event_value {
                Some(v) => Sourced {
                    value: v,
                    source: Layer::Event,
                    overrides: Some(Layer::Tenant),
                },
                None => Sourced::from(tenant_value, Layer::Tenant),
            }
        }
        let resolved = ResolvedProvider {
            id: p.id.clone(),
            kind: p.kind(),
            name: p.name.clone(),
            source: Layer::Tenant,
            settings: p.settings.clone(),
            credentials: p.credentials.clone(),
            priority: field(p.priority, o.and_then(|o| o.priority)),
            weight: field(p.weight, o.and_then(|o| o.weight)),
            active: field(p.active, o.and_then(|o| o.active)),
            rate_limit_per_second: p.rate_limit_per_second,
            receipt_token: p.receipts.as_ref().map(|r| r.token.clone()),
        };
        push(p.channel, resolved, o.is_some());
    }
    for e in event {
        if let EventProviderEntry::Own(p) = e {
            let resolved = ResolvedProvider {
                id: p.id.clone(),
                kind: p.kind(),
                name: p.name.clone(),
                source: Layer::Event,
                settings: p.settings.clone(),
                credentials: p.credentials.clone(),
                priority: Sourced::from(p.priority, Layer::Event),
                weight: Sourced::from(p.weight, Layer::Event),
                active: Sourced::from(p.active, Layer::Event),
                rate_limit_per_second: p.rate_limit_per_second,
                receipt_token: p.receipts.as_ref().map(|r| r.token.clone()),
            };
            push(p.channel, resolved, true);
        }
    }
    for channel in channels.values_mut() {
        channel
            .providers
            .sort_by(|a, b| (a.priority.value, &a.id).cmp(&(b.priority.value, &b.id)));
    }
    channels
}

/// The templates of each slot as the layers stack (event over tenant over global). A scope above
/// the event (a tenant's own view, the platform's) passes empty layers for what it does not see.
pub fn resolve_templates(
    global: &[TemplateVersion],
    tenant: &[TemplateVersion],
    event: &[TemplateVersion],
) -> Vec<ResolvedTemplate> {
    let mut slots: BTreeMap<(Category, Channel), ResolvedTemplate> = BTreeMap::new();
    let stacked = [
        (Layer::Global, global),
        (Layer::Tenant, tenant),
        (Layer::Event, event),
    ];
    for (layer, templates) in stacked {
        for t in templates.iter() {
            let key = (t.category, t.channel);
            let replaced = slots.get(&key).map(|existing| existing.source);
            // Two versions of one slot in one layer should not happen; the newest wins so the
            // result does not depend on the order the store returned them in.
            if replaced == Some(layer) && slots.get(&key).is_some_and(|e| e.version >= t.version) {
                continue;
            }
            let overrides = slots.get(&key).and_then(|e| {
                if e.source == layer {
                    e.overrides
                } else {
                    Some(e.source)
                }
            });
            slots.insert(
                key,
                ResolvedTemplate {
                    category: t.category,
                    channel: t.channel,
                    version: t.version,
                    source: layer,
                    overrides,
                    content: t.content.clone(),
                },
            );
        }
    }
    slots.into_values().collect()
}

/// The brand fields as the layers stack, each with the layer it came from.
pub fn resolve_brand(tenant: &Brand, event: &Brand) -> BTreeMap<String, Sourced<String>> {
    BRAND_FIELDS
        .iter()
        .filter_map(|(name, get, _)| {
            let resolved = match (get(tenant), get(event)) {
                (t, Some(e)) => Sourced {
                    value: e.clone(),
                    source: Layer::Event,
                    overrides: t.as_ref().map(|_| Layer::Tenant),
                },
                (Some(t), None) => Sourced::from(t.clone(), Layer::Tenant),
                (None, None) => return None,
            };
            Some(((*name).to_owned(), resolved))
        })
        .collect()
}
