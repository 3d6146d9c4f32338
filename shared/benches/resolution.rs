//! Resolution of a realistic event configuration: 30 global templates; a tenant with 6 providers
//! and 30 templates; an event with 2 provider overrides and 10 template overrides.
//! `cargo bench -p herald-shared --bench resolution`

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use herald_shared::domain::brand::Brand;
use herald_shared::domain::provider::{
    EventProviderEntry, ProviderConfig, ProviderOverride, ProviderSettings, SealedCredentials,
    SmsType,
};
use herald_shared::domain::resolution::{ConfigurationLayers, EventSettings, resolve};
use herald_shared::domain::template::{TemplateContent, TemplateVersion, VariableDecl};
use herald_shared::domain::validation::EmailAddress;
use herald_shared::domain::{Category, Channel, EventId, ProviderId, TenantId};
use time::OffsetDateTime;

const CHANNELS: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Whatsapp];

fn template(category: Category, channel: Channel, layer: &str) -> TemplateVersion {
    let body = match channel {
        Channel::Email => format!(
            "<table width=\"100%\"><tr><td style=\"font-family: {{{{ brand.font_family }}}}\">\
             <img src=\"{{{{ brand.logo_url }}}}\" alt=\"{{{{ brand.display_name }}}}\"/>\
             <h1>{category}: {{{{ event_name }}}}</h1><p>Dear {{{{ guest_name }}}},</p>{}\
             <p>{layer} copy.</p></td></tr></table>",
            "<p>We look forward to seeing you at {{ venue }} on {{ event_date }}. Please let us know if anything changes.</p>".repeat(12)
        ),
        _ => format!("{{{{ brand.display_name }}}}: Hi {{{{ guest_name }}}}, {category} for {{{{ event_name }}}} on {{{{ event_date }}}} at {{{{ venue }}}}. Reply STOP to opt out."),
    };
    TemplateVersion {
        category,
        channel,
        version: 3,
        content: TemplateContent {
            subject: (channel == Channel::Email)
                .then(|| format!("{category}: {{{{ event_name }}}}")),
            body,
            variables: ["guest_name", "event_name", "event_date", "venue"]
                .into_iter()
                .map(|n| VariableDecl::text(n, &format!("sample {n}")))
                .collect(),
            brand_assets: BTreeMap::from([(
                "header".into(),
                "https://cdn.acme.example/header.png".into(),
            )]),
            design_settings: BTreeMap::from([
                ("layout".into(), "centered".into()),
                ("button_color".into(), "#0a3d62".into()),
            ]),
            whatsapp: None,
        },
        created_by: "user-ada".into(),
        created_at: OffsetDateTime::UNIX_EPOCH,
        state: herald_shared::domain::template::TemplateState::Published,
        review: None,
    }
}

fn all_slots(layer: &str) -> Vec<TemplateVersion> {
    Category::ALL
        .iter()
        .flat_map(|&cat| CHANNELS.iter().map(move |&ch| template(cat, ch, layer)))
        .collect()
}

fn provider(channel: Channel, settings: ProviderSettings, priority: u32) -> ProviderConfig {
    ProviderConfig {
        id: ProviderId::generate(),
        channel,
        name: format!("{channel} {priority}"),
        settings,
        credentials: Some(SealedCredentials {
            encrypted_data_key: "A".repeat(248),
            nonce: "B".repeat(16),
            ciphertext: "C".repeat(96),
            hints: BTreeMap::from([("api_key".into(), "…beef".into())]),
        }),
        priority,
        weight: 100,
        active: true,
        rate_limit_per_second: None,
        receipts: None,
        revision: 4,
        updated_at: OffsetDateTime::UNIX_EPOCH,
        updated_by: "user-ada".into(),
    }
}

fn layers() -> ConfigurationLayers {
    let from = || EmailAddress::parse("events@acme.example").expect("address");
    let tenant_providers = vec![
        provider(
            Channel::Email,
            ProviderSettings::Brevo {
                from_address: from(),
                from_name: None,
            },
            1,
        ),
        provider(
            Channel::Email,
            ProviderSettings::Ses {
                from_address: from(),
                from_name: None,
                configuration_set: None,
                events_topic_arn: None,
            },
            2,
        ),
        provider(
            Channel::Sms,
            ProviderSettings::AfricasTalking {
                username: "acme".into(),
                sender_id: None,
            },
            1,
        ),
        provider(
            Channel::Sms,
            ProviderSettings::Twilio {
                account_sid: format!("AC{}", "a".repeat(32)),
                from: "+260211555010".into(),
            },
            2,
        ),
        provider(
            Channel::Sms,
            ProviderSettings::Sns {
                sender_id: None,
                sms_type: SmsType::Transactional,
            },
            3,
        ),
        provider(
            Channel::Whatsapp,
            ProviderSettings::MetaWhatsapp {
                phone_number_id: "106540352242922".into(),
                business_account_id: None,
            },
            1,
        ),
    ];
    let event_providers = tenant_providers[2..4]
        .iter()
        .map(|p| {
            EventProviderEntry::Override(ProviderOverride {
                provider: p.id.clone(),
                priority: Some(5 - p.priority),
                weight: Some(50),
                active: None,
                revision: 1,
                updated_at: OffsetDateTime::UNIX_EPOCH,
                updated_by: "user-grace".into(),
            })
        })
        .collect();
    let event_templates = all_slots("event").into_iter().step_by(3).take(10).collect();
    ConfigurationLayers {
        tenant: TenantId::parse("acme-events").expect("id"),
        event: EventId::parse("gala-2026").expect("id"),
        tenant_providers,
        event_providers,
        global_templates: all_slots("global"),
        tenant_templates: all_slots("tenant"),
        event_templates,
        tenant_brand: Brand {
            display_name: Some("Acme Events".into()),
            logo_url: Some("https://cdn.acme.example/logo.png".into()),
            primary_color: Some("#0a3d62".into()),
            font_family: Some("Inter".into()),
            ..Brand::default()
        },
        event_brand: Brand {
            display_name: Some("Acme Winter Gala".into()),
            ..Brand::default()
        },
        settings: EventSettings {
            channels: CHANNELS.into_iter().collect(),
            categories: Category::ALL.into_iter().collect::<BTreeSet<_>>(),
            ..EventSettings::default()
        },
        pending: Vec::new(),
    }
}

fn resolution(c: &mut Criterion) {
    let layers = layers();
    let resolved = resolve(&layers);
    assert_eq!(resolved.templates.len(), 30);
    assert_eq!(
        resolved
            .channels
            .values()
            .map(|c| c.providers.len())
            .sum::<usize>(),
        6
    );
    let problems = herald_shared::wizard::check_configuration(&resolved);
    assert!(
        problems.is_empty(),
        "the benchmark configuration is valid: {problems:?}"
    );
    c.bench_function(
        "resolve (30 global + 30 tenant + 10 event templates, 6 providers + 2 overrides)",
        |b| b.iter(|| resolve(black_box(&layers))),
    );
    c.bench_function(
        "wizard static validation (render all 30 slots with samples)",
        |b| b.iter(|| herald_shared::wizard::check_configuration(black_box(&resolved))),
    );
}

criterion_group!(benches, resolution);
criterion_main!(benches);
