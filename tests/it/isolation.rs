//! Tenant isolation and roles: the tenant comes from the verified claims only; another tenant's
//! data is 404; an event manager cannot change tenant defaults.

use crate::harness::{World, provider_body};

#[tokio::test]
async fn another_tenants_data_is_not_found() {
    let owner = World::new().await;
    let ids = owner.configured_event().await;
    owner
        .ok(owner.event("wizard-completion/complete-wizard"))
        .await;
    let intruder = "globex";
    let as_intruder = |name: &str| owner.event(name).claim("herald:tenant", intruder);

    for request in [
        as_intruder("config-resolution/get-event-configuration"),
        as_intruder("config-api/get-tenant-provider").path("providerId", &ids["twilio"]),
        as_intruder("config-api/update-tenant-provider")
            .path("providerId", &ids["twilio"])
            .body(provider_body("twilio")),
        as_intruder("config-api/delete-tenant-provider").path("providerId", &ids["twilio"]),
        as_intruder("config-api/test-tenant-provider").path("providerId", &ids["twilio"]),
        as_intruder("config-api/get-event-settings"),
        as_intruder("config-api/list-event-providers"),
        as_intruder("wizard-completion/list-snapshots"),
        as_intruder("wizard-completion/get-snapshot"),
        as_intruder("wizard-completion/activate-snapshot"),
        as_intruder("wizard-completion/complete-wizard"),
    ] {
        let reply = owner.call(request).await;
        assert_eq!(
            reply.status, 404,
            "{} answered {}: {}",
            reply.route, reply.status, reply.text
        );
    }
    // The path cannot choose the tenant: the owner's data is untouched.
    assert_eq!(
        owner
            .ok(owner.event("config-api/list-tenant-providers"))
            .await["items"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn roles_decide_which_layer_a_caller_may_change() {
    let w = World::new().await;
    let ids = w.configured_event().await;
    let as_manager = |name: &str| w.event(name).claim("herald:role", "event_manager");
    for request in [
        as_manager("config-api/create-tenant-provider").body(provider_body("brevo")),
        as_manager("config-api/update-tenant-provider")
            .path("providerId", &ids["twilio"])
            .body(provider_body("twilio")),
        as_manager("config-api/delete-tenant-provider").path("providerId", &ids["twilio"]),
        as_manager("config-api/put-tenant-template"),
        as_manager("config-api/put-tenant-brand"),
        w.event("config-api/put-platform-template-as-tenant-admin"),
    ] {
        let reply = w.call(request).await;
        assert_eq!(
            reply.status, 403,
            "{} answered {}: {}",
            reply.route, reply.status, reply.text
        );
        assert_eq!(reply.body["error"]["code"], "forbidden");
    }
    // Event managers may read tenant defaults and change their event.
    w.ok(as_manager("config-api/list-tenant-providers")).await;
    w.ok(as_manager("config-api/override-tenant-provider-for-event")
        .path("providerId", &ids["twilio"]))
        .await;
    // Platform admins publish global templates, and have no tenant to configure.
    w.ok(w.event("config-api/put-platform-template")).await;
    let admin_on_tenant = w
        .event("config-api/list-tenant-providers")
        .claim("herald:role", "platform_admin");
    assert_eq!(w.call(admin_on_tenant).await.status, 403);
    // Unknown roles and missing subjects are not identities.
    assert_eq!(
        w.call(
            w.event("config-api/list-tenant-providers")
                .claim("herald:role", "root")
        )
        .await
        .status,
        401
    );
    assert_eq!(
        w.call(w.event("config-api/list-tenant-providers").claim("sub", ""))
            .await
            .status,
        401
    );
}
