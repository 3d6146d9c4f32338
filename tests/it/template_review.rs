//! Four eyes on templates against the emulator: a submitted version is stored beside the
//! published one and listed by the same layer query; reviews are conditional writes, so two at
//! once resolve once; an approval never puts an older version over a newer published one.

use serde_json::{Value, json};

use crate::harness::{Request, World};

fn submitted_list(w: &World) -> Request {
    let mut request = w.event("config-api/list-tenant-templates");
    request.0["queryStringParameters"] = json!({"state": "submitted"});
    request.0["rawQueryString"] = json!("state=submitted");
    request
}

fn review(w: &World, version: u32, reviewer: &str) -> Request {
    w.event("config-api/approve-tenant-template")
        .path("version", &version.to_string())
        .claim("sub", reviewer)
}

async fn approvals(w: &World, on: bool) {
    w.ok(w
        .event("config-api/put-tenant-settings")
        .body(json!({"message_retention_days": 30, "templates_need_approval": on})))
        .await;
}

fn items(page: &Value) -> usize {
    page["items"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn reviews_resolve_once_and_never_publish_an_older_version() {
    let w = World::new().await;
    approvals(&w, true).await;

    let submitted = w.call(w.event("config-api/put-tenant-template")).await;
    assert_eq!(submitted.status, 202, "{}", submitted.text);
    assert_eq!(submitted.body["state"], "submitted");
    assert_eq!(
        w.call(w.event("config-api/get-tenant-template"))
            .await
            .status,
        404,
        "nothing is published before the review"
    );
    assert_eq!(items(&w.ok(submitted_list(&w)).await), 1);

    // Two reviewers at once: the version's state is the condition, one approval is recorded.
    let (a, b) = tokio::join!(
        w.call(review(&w, 1, "user-grace")),
        w.call(review(&w, 1, "user-lin"))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{} / {}", a.text, b.text);
    let current = w.ok(w.event("config-api/get-tenant-template")).await;
    assert_eq!(current["version"], 1);
    assert_eq!(current["state"], "published");
    assert_eq!(items(&w.ok(submitted_list(&w)).await), 0);

    // Version 2 waits; version 3 is published meanwhile (approvals switched off): approving 2
    // now would put an older version over a newer one, and is refused.
    let second = w.call(w.event("config-api/put-tenant-template")).await;
    assert_eq!(second.status, 202, "{}", second.text);
    approvals(&w, false).await;
    let third = w.call(w.event("config-api/put-tenant-template")).await;
    assert_eq!(third.status, 200, "{}", third.text);
    assert_eq!(third.body["version"], 3);
    let late = w.call(review(&w, 2, "user-grace")).await;
    assert_eq!(late.status, 409, "{}", late.text);
    let current = w.ok(w.event("config-api/get-tenant-template")).await;
    assert_eq!(current["version"], 3);
    // Version 2 still waits, and can be rejected.
    assert_eq!(items(&w.ok(submitted_list(&w)).await), 1);
    let rejected = w
        .ok(w
            .event("config-api/reject-tenant-template")
            .path("version", "2")
            .claim("sub", "user-grace"))
        .await;
    assert_eq!(rejected["state"], "rejected");
    assert_eq!(items(&w.ok(submitted_list(&w)).await), 0);
}
