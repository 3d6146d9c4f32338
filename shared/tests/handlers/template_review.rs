//! Four eyes on templates, over the in-memory stores: with approvals on (a tenant setting, and
//! always for platform templates) a save is submitted and the published version stays in use;
//! its author cannot approve it; a rejected version is never used; completion refuses while a
//! version the event uses waits; two reviews at once resolve once; every transition is audited
//! with its actor and announced to the tenant's status webhooks.

use std::collections::HashMap;
use std::sync::Arc;

use crate::support::{AcceptingSender, Adjust, PassingChecker, fixture};
use herald_shared::App;
use herald_shared::domain::status_event::StatusEventData;
use herald_shared::status_webhooks::MemoryStatusEvents;
use herald_shared::store::memory::MemoryStore;
use serde_json::{Value, json};

struct Harness {
    app: App,
    store: Arc<MemoryStore>,
    events: Arc<MemoryStatusEvents>,
}

impl Harness {
    fn new() -> Self {
        let store = Arc::new(MemoryStore::default());
        let events = Arc::new(MemoryStatusEvents::default());
        let mut app = App::over_memory(
            store.clone(),
            Arc::new(PassingChecker),
            Arc::new(AcceptingSender),
        );
        app.status_events = events.clone();
        Self { app, store, events }
    }

    /// The template events announced to the tenant's webhooks: (type, version, by, reason).
    fn announced(&self) -> Vec<(String, u32, String, Option<String>)> {
        self.events
            .published()
            .into_iter()
            .filter_map(|e| match e.data {
                StatusEventData::Template(t) => {
                    Some((e.kind.as_str().to_owned(), t.version, t.by, t.reason))
                }
                _ => None,
            })
            .collect()
    }

    async fn call(&self, event: Value) -> (u16, Value, HashMap<String, String>) {
        crate::support::serve(&self.app, event).await
    }

    async fn ok(&self, event: Value) -> Value {
        crate::support::ok(&self.app, event).await
    }

    async fn approvals_on(&self) {
        self.ok(fixture("config-api/put-tenant-settings")
            .body(json!({"message_retention_days": 30, "templates_need_approval": true})))
            .await;
    }

    /// Saves the tenant's SMS invitation with `body` as `user`: (status, answer).
    async fn save(&self, user: &str, body: &str) -> (u16, Value) {
        let (status, answer, _) = self
            .call(
                fixture("config-api/put-tenant-template")
                    .claim("sub", user)
                    .body(json!({"body": body, "variables": [{"name": "guest_name", "sample": "Ada"}, {"name": "event_date", "sample": "12 Dec"}]})),
            )
            .await;
        (status, answer)
    }

    async fn review(&self, verdict: &str, version: u32, user: &str) -> (u16, Value) {
        let mut request = fixture(&format!("config-api/{verdict}-tenant-template"))
            .path("version", &version.to_string())
            .claim("sub", user);
        request["rawPath"] = json!(format!(
            "/v1/tenant/templates/invitation/sms/versions/{version}/{verdict}"
        ));
        let (status, answer, _) = self.call(request).await;
        (status, answer)
    }

    /// The body of the tenant's SMS invitation in use, if any.
    async fn in_use(&self) -> Option<String> {
        let (status, answer, _) = self.call(fixture("config-api/get-tenant-template")).await;
        (status == 200).then(|| answer["body"].as_str().unwrap_or_default().to_owned())
    }

    fn audited(&self) -> Vec<(String, String)> {
        self.store
            .audit_entries()
            .into_iter()
            .filter(|e| e.action.starts_with("template."))
            .map(|e| (e.action, e.actor))
            .collect()
    }
}

const FIRST: &str = "Hi {{ guest_name }}, see you on {{ event_date }}. Reply STOP to opt out.";
const SECOND: &str = "Dear {{ guest_name }}, we meet on {{ event_date }}. Reply STOP to opt out.";

#[tokio::test]
async fn without_approvals_a_save_publishes_at_once() {
    let h = Harness::new();
    let (status, saved) = h.save("user-ada", FIRST).await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!(saved["state"], "published");
    assert_eq!(h.in_use().await.as_deref(), Some(FIRST));
}

#[tokio::test]
async fn a_submitted_version_waits_and_only_someone_else_can_approve_it() {
    let h = Harness::new();
    assert_eq!(h.save("user-ada", FIRST).await.0, 201);
    h.approvals_on().await;

    let (status, submitted) = h.save("user-ada", SECOND).await;
    assert_eq!(status, 202, "{submitted}");
    assert_eq!(submitted["state"], "submitted");
    assert_eq!(submitted["version"], 2);
    assert_eq!(
        h.in_use().await.as_deref(),
        Some(FIRST),
        "the published version stays in use"
    );

    // Listed as waiting; not among what the author may review.
    let waiting = h
        .ok(fixture("config-api/list-tenant-templates")
            .query("state", "submitted")
            .claim("sub", "user-grace"))
        .await;
    assert_eq!(
        waiting["items"].as_array().map(Vec::len),
        Some(1),
        "{waiting}"
    );
    let mine = h
        .ok(fixture("config-api/list-tenant-templates")
            .query("state", "submitted")
            .query("reviewable", "true")
            .claim("sub", "user-ada"))
        .await;
    assert_eq!(mine["items"], json!([]), "{mine}");

    // Four eyes.
    let (status, refused) = h.review("approve", 2, "user-ada").await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["code"], "four_eyes");
    assert_eq!(h.in_use().await.as_deref(), Some(FIRST));

    let (status, approved) = h.review("approve", 2, "user-grace").await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["state"], "published");
    assert_eq!(approved["review"]["by"], "user-grace");
    assert_eq!(h.in_use().await.as_deref(), Some(SECOND));

    // Reviewed once: a second approval is refused, and nothing waits any more.
    let (status, again) = h.review("approve", 2, "user-grace").await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["error"]["code"], "not_submitted");
    let waiting = h
        .ok(fixture("config-api/list-tenant-templates").query("state", "submitted"))
        .await;
    assert_eq!(waiting["items"], json!([]));

    assert_eq!(
        h.audited(),
        vec![
            ("template.published".to_owned(), "user-ada".to_owned()),
            ("template.submitted".to_owned(), "user-ada".to_owned()),
            ("template.approved".to_owned(), "user-grace".to_owned()),
        ]
    );
    assert_eq!(
        h.announced(),
        vec![
            (
                "template.submitted".to_owned(),
                2,
                "user-ada".to_owned(),
                None
            ),
            (
                "template.approved".to_owned(),
                2,
                "user-grace".to_owned(),
                None
            ),
        ],
        "refused reviews announce nothing"
    );
}

#[tokio::test]
async fn a_rejected_version_is_never_used() {
    let h = Harness::new();
    h.approvals_on().await;
    assert_eq!(h.save("user-ada", FIRST).await.0, 202);
    assert_eq!(h.in_use().await, None, "nothing published yet");

    let (status, _, _) = h
        .call(
            fixture("config-api/reject-tenant-template")
                .path("version", "1")
                .body(json!({"reason": "  "})),
        )
        .await;
    assert_eq!(status, 400, "a rejection needs a reason");

    let (status, rejected, _) = h
        .call(
            fixture("config-api/reject-tenant-template")
                .path("version", "1")
                .body(json!({"reason": "Say which venue."})),
        )
        .await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["state"], "rejected");
    assert_eq!(rejected["review"]["reason"], "Say which venue.");
    assert_eq!(
        h.announced().last(),
        Some(&(
            "template.rejected".to_owned(),
            1,
            "user-grace".to_owned(),
            Some("Say which venue.".to_owned())
        ))
    );
    assert_eq!(h.in_use().await, None);
    assert_eq!(h.review("approve", 1, "user-grace").await.0, 409);

    // The slot's history shows it, with its state.
    let versions = h
        .ok(fixture("config-api/list-tenant-template-versions"))
        .await;
    assert_eq!(versions["items"][0]["state"], "rejected");
    // An unknown version is 404.
    assert_eq!(h.review("approve", 9, "user-grace").await.0, 404);
}

#[tokio::test]
async fn completion_refuses_while_a_version_it_uses_waits() {
    let h = Harness::new();
    h.ok(fixture("config-api/put-event-settings")
        .body(json!({"channels": ["sms"], "categories": ["invitation"]})))
        .await;
    h.ok(fixture("config-api/put-tenant-brand")).await;
    h.ok(fixture("config-api/create-tenant-provider")).await;
    assert_eq!(h.save("user-ada", FIRST).await.0, 201);
    h.approvals_on().await;
    assert_eq!(h.save("user-ada", SECOND).await.0, 202);

    let (status, refused, _) = h.call(fixture("wizard-completion/complete-wizard")).await;
    assert_eq!(status, 422, "{refused}");
    let problems = refused["error"]["problems"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        problems
            .iter()
            .any(|p| p["code"] == "template_pending_approval"
                && p["field"] == "templates.invitation.sms.versions.2"),
        "{refused}"
    );

    assert_eq!(h.review("approve", 2, "user-grace").await.0, 200);
    let completed = h
        .ok(fixture("wizard-completion/complete-wizard").header("idempotency-key", "after-review"))
        .await;
    assert_eq!(completed["version"], 1, "{completed}");
}

#[tokio::test]
async fn two_reviews_at_once_resolve_once() {
    let h = Harness::new();
    h.approvals_on().await;
    assert_eq!(h.save("user-ada", FIRST).await.0, 202);
    let (a, b) = tokio::join!(
        h.review("approve", 1, "user-grace"),
        h.review("approve", 1, "user-lin"),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "{a:?} {b:?}");
    let approvals = h
        .audited()
        .into_iter()
        .filter(|(action, _)| action == "template.approved")
        .count();
    assert_eq!(approvals, 1);
}

#[tokio::test]
async fn platform_templates_always_need_a_second_platform_admin() {
    let h = Harness::new();
    let (status, submitted, _) = h.call(fixture("config-api/put-platform-template")).await;
    assert_eq!(status, 202, "{submitted}");
    let version = submitted["version"]
        .as_u64()
        .unwrap_or_default()
        .to_string();
    let approve = |sub: &str| {
        let mut request = fixture("config-api/approve-platform-template")
            .path("version", &version)
            .claim("sub", sub);
        request["rawPath"] = json!(format!(
            "/v1/platform/templates/invitation/sms/versions/{version}/approve"
        ));
        request
    };
    let author = submitted["created_by"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (status, refused, _) = h.call(approve(&author)).await;
    assert_eq!(status, 403, "{refused}");
    let (status, _, _) = h
        .call(
            approve("user-ada")
                .claim("herald:role", "tenant_admin")
                .claim("herald:tenant", "acme-events"),
        )
        .await;
    assert_eq!(status, 403, "a tenant admin reviews no platform template");
    let (status, approved, _) = h.call(approve("ops-bo")).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["state"], "published");
    let (status, current, _) = h.call(fixture("config-api/get-platform-template")).await;
    assert_eq!(status, 200, "{current}");
    assert_eq!(current["version"], approved["version"]);
    assert!(
        h.announced().is_empty(),
        "platform templates are no tenant's to be told about"
    );
}

#[tokio::test]
async fn a_platform_version_waiting_for_review_blocks_no_tenant() {
    let h = Harness::new();
    let (status, submitted, _) = h.call(fixture("config-api/put-platform-template")).await;
    assert_eq!(status, 202, "{submitted}");
    h.ok(fixture("config-api/put-event-settings")
        .body(json!({"channels": ["sms"], "categories": ["invitation"]})))
        .await;
    h.ok(fixture("config-api/put-tenant-brand")).await;
    h.ok(fixture("config-api/create-tenant-provider")).await;
    assert_eq!(h.save("user-ada", FIRST).await.0, 201);
    let completed = h.ok(fixture("wizard-completion/complete-wizard")).await;
    assert_eq!(completed["version"], 1, "{completed}");
}
