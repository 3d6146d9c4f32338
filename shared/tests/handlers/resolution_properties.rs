//! Properties of configuration resolution over arbitrary layers: event overrides always win,
//! removing one falls back to the tenant, global templates never override a tenant's, and the
//! result does not depend on the order the stores return items in.

use std::collections::BTreeMap;

use herald_shared::domain::brand::{BRAND_FIELDS, Brand};
use herald_shared::domain::provider::{
    EventProviderEntry, ProviderConfig, ProviderOverride, ProviderSettings, SmsType,
};
use herald_shared::domain::resolution::{ConfigurationLayers, EventSettings, Layer, resolve};
use herald_shared::domain::template::{TemplateContent, TemplateVersion};
use herald_shared::domain::{Category, Channel, EventId, ProviderId, TenantId};
use proptest::prelude::*;
use time::OffsetDateTime;

fn provider(id: ProviderId, priority: u32, weight: u32, active: bool) -> ProviderConfig {
    ProviderConfig {
        id,
        channel: Channel::Sms,
        name: "sms".into(),
        settings: ProviderSettings::Sns {
            sender_id: None,
            sms_type: SmsType::Transactional,
        },
        credentials: None,
        priority,
        weight,
        active,
        rate_limit_per_second: None,
        receipts: None,
        revision: 1,
        updated_at: OffsetDateTime::UNIX_EPOCH,
        updated_by: "u".into(),
    }
}

fn template(category: Category, channel: Channel, version: u32, body: &str) -> TemplateVersion {
    TemplateVersion {
        category,
        channel,
        version,
        content: TemplateContent {
            subject: None,
            body: body.into(),
            variables: vec![],
            brand_assets: BTreeMap::new(),
            design_settings: BTreeMap::new(),
            whatsapp: None,
        },
        created_by: "u".into(),
        created_at: OffsetDateTime::UNIX_EPOCH,
        state: herald_shared::domain::template::TemplateState::Published,
        review: None,
    }
}

fn slot() -> impl Strategy<Value = (Category, Channel)> {
    (
        prop::sample::select(Category::ALL.to_vec()),
        prop::sample::select(Channel::ALL.to_vec()),
    )
}

fn templates(layer: &'static str) -> impl Strategy<Value = Vec<TemplateVersion>> {
    prop::collection::btree_map(slot(), 1u32..5, 0..12).prop_map(move |slots| {
        slots
            .into_iter()
            .map(|((cat, ch), v)| template(cat, ch, v, &format!("{layer} {cat} {ch} v{v}")))
            .collect()
    })
}

fn brand() -> impl Strategy<Value = Brand> {
    prop::collection::vec(prop::option::of("[a-z]{1,8}"), BRAND_FIELDS.len()).prop_map(|values| {
        let mut brand = Brand::default();
        for ((_, _, set), value) in BRAND_FIELDS.iter().zip(values) {
            *set(&mut brand) = value;
        }
        brand
    })
}

prop_compose! {
    fn layers()(
        tenant_specs in prop::collection::vec((1u32..5, 0u32..200, any::<bool>()), 0..6),
        override_specs in prop::collection::vec((any::<prop::sample::Index>(), prop::option::of(1u32..5), prop::option::of(0u32..200), prop::option::of(any::<bool>())), 0..4),
        own_specs in prop::collection::vec((1u32..5, 0u32..200, any::<bool>()), 0..3),
        global_templates in templates("global"),
        tenant_templates in templates("tenant"),
        event_templates in templates("event"),
        tenant_brand in brand(),
        event_brand in brand(),
    ) -> ConfigurationLayers {
        let tenant_providers: Vec<ProviderConfig> =
            tenant_specs.into_iter().map(|(p, w, a)| provider(ProviderId::generate(), p, w, a)).collect();
        let mut event_providers: Vec<EventProviderEntry> = Vec::new();
        let mut overridden = std::collections::BTreeSet::new();
        if !tenant_providers.is_empty() {
            for (index, priority, weight, active) in override_specs {
                let target = index.get(&tenant_providers).id.clone();
                if overridden.insert(target.clone()) {
                    event_providers.push(EventProviderEntry::Override(ProviderOverride {
                        provider: target, priority, weight, active, revision: 1,
                        updated_at: OffsetDateTime::UNIX_EPOCH, updated_by: "u".into(),
                    }));
                }
            }
        }
        event_providers.extend(own_specs.into_iter().map(|(p, w, a)| EventProviderEntry::Own(Box::new(provider(ProviderId::generate(), p, w, a)))));
        ConfigurationLayers {
            tenant: TenantId::parse("acme").expect("id"),
            event: EventId::parse("gala").expect("id"),
            tenant_providers,
            event_providers,
            global_templates,
            tenant_templates,
            event_templates,
            tenant_brand,
            event_brand,
            settings: EventSettings::default(),
            pending: Vec::new(),
        }
    }
}

proptest! {
    #[test]
    fn event_overrides_always_win(l in layers()) {
        let resolved = resolve(&l);
        let providers: Vec<_> = resolved.channels.values().flat_map(|c| &c.providers).collect();
        for entry in &l.event_providers {
            match entry {
                EventProviderEntry::Override(o) => {
                    let p = providers.iter().find(|p| p.id == o.provider).expect("overridden provider resolved");
                    if let Some(v) = o.priority { prop_assert_eq!((p.priority.value, p.priority.source), (v, Layer::Event)); }
                    if let Some(v) = o.weight { prop_assert_eq!((p.weight.value, p.weight.source), (v, Layer::Event)); }
                    if let Some(v) = o.active { prop_assert_eq!((p.active.value, p.active.source), (v, Layer::Event)); }
                }
                EventProviderEntry::Own(own) => {
                    let p = providers.iter().find(|p| p.id == own.id).expect("own provider resolved");
                    prop_assert_eq!(p.source, Layer::Event);
                }
            }
        }
        for t in &l.event_templates {
            let r = resolved.template(t.category, t.channel).expect("slot resolved");
            prop_assert_eq!((r.source, r.version, &r.content.body), (Layer::Event, t.version, &t.content.body));
        }
        for (name, get, _) in BRAND_FIELDS {
            if let Some(v) = get(&l.event_brand) {
                prop_assert_eq!(&resolved.brand[name].value, v);
                prop_assert_eq!(resolved.brand[name].source, Layer::Event);
            }
        }
    }

    #[test]
    fn removing_overrides_falls_back_to_the_tenant(l in layers()) {
        let mut without = l.clone();
        without.event_providers.retain(|e| matches!(e, EventProviderEntry::Own(_)));
        without.event_templates.clear();
        without.event_brand = Brand::default();
        let resolved = resolve(&without);
        for tp in &l.tenant_providers {
            let p = resolved.channels.values().flat_map(|c| &c.providers).find(|p| p.id == tp.id).expect("resolved");
            prop_assert_eq!((p.priority.value, p.priority.source), (tp.priority, Layer::Tenant));
            prop_assert_eq!((p.weight.value, p.active.value), (tp.weight, tp.active));
            prop_assert_eq!(p.active.source, Layer::Tenant);
        }
        for t in &l.tenant_templates {
            let r = resolved.template(t.category, t.channel).expect("slot resolved");
            prop_assert_eq!((r.source, r.version), (Layer::Tenant, t.version));
        }
        for (name, get, _) in BRAND_FIELDS {
            match get(&l.tenant_brand) {
                Some(v) => prop_assert_eq!((&resolved.brand[name].value, resolved.brand[name].source), (v, Layer::Tenant)),
                None => prop_assert!(!resolved.brand.contains_key(name)),
            }
        }
    }

    #[test]
    fn global_templates_never_override_a_tenants(l in layers()) {
        let resolved = resolve(&l);
        for t in &resolved.templates {
            let tenant_has = l.tenant_templates.iter().any(|x| (x.category, x.channel) == (t.category, t.channel));
            if tenant_has { prop_assert_ne!(t.source, Layer::Global); }
            if t.source == Layer::Global { prop_assert!(t.overrides.is_none()); }
        }
        // Every slot of any layer is present exactly once.
        let slots: std::collections::BTreeSet<_> = l.global_templates.iter().chain(&l.tenant_templates).chain(&l.event_templates)
            .map(|t| (t.category, t.channel)).collect();
        prop_assert_eq!(slots.len(), resolved.templates.len());
    }

    #[test]
    fn resolution_is_deterministic(l in layers(), seed in any::<u64>()) {
        let mut shuffled = l.clone();
        let rotate = |len: usize| if len == 0 { 0 } else { (seed as usize) % len };
        let n = rotate(shuffled.tenant_providers.len());
        shuffled.tenant_providers.rotate_left(n);
        shuffled.tenant_providers.reverse();
        let n = rotate(shuffled.event_providers.len());
        shuffled.event_providers.rotate_left(n);
        shuffled.global_templates.reverse();
        let n = rotate(shuffled.tenant_templates.len());
        shuffled.tenant_templates.rotate_left(n);
        shuffled.event_templates.reverse();
        prop_assert_eq!(resolve(&l), resolve(&shuffled.clone()));
        prop_assert_eq!(resolve(&shuffled), resolve(&shuffled));
    }
}
