//! Resolution reads each layer partition with one Query, whatever the configuration's size.

use crate::harness::{World, provider_body};

#[tokio::test]
async fn resolution_costs_one_query_per_layer_partition() {
    let w = World::new().await;
    w.configured_event().await;
    for kind in ["africas_talking", "smtp", "meta_whatsapp"] {
        w.tenant_provider(provider_body(kind)).await;
    }
    w.ok(w
        .event("config-api/create-event-provider")
        .body(provider_body("twilio")))
        .await;
    w.ok(w.event("config-api/put-event-template")).await;
    w.ok(w.event("config-api/put-event-brand")).await;
    w.ok(w.event("config-api/put-platform-template")).await;

    let tenant = herald_shared::domain::TenantId::parse(&w.tenant).expect("tenant");
    let event = herald_shared::domain::EventId::parse("gala-2026").expect("event");
    w.counter.reset();
    let resolved = herald_shared::resolution::resolve_event(
        w.app.providers.as_ref(),
        w.app.templates.as_ref(),
        &tenant,
        &event,
    )
    .await
    .expect("resolves")
    .expect("event exists");
    let counts = w.counter.snapshot();
    // Providers: tenant and event partitions; templates: platform, tenant and event partitions.
    assert_eq!(counts.get("DynamoDB.Query"), Some(&5), "{counts:?}");
    assert_eq!(
        w.counter.total(),
        5,
        "nothing but the five layer queries: {counts:?}"
    );
    assert_eq!(
        resolved
            .channels
            .values()
            .map(|c| c.providers.len())
            .sum::<usize>(),
        6
    );
}
