//! Status webhooks over in-memory stores: the endpoint API driven by the sample requests in
//! `events/config-api/`, the worker posting to a receiver on 127.0.0.1 (retries, disabling,
//! redirects), and dispatch publishing the status of the messages it settles. The
//! emulator-backed flow lives in the integration tests (`tests/it/status_webhooks.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use herald_shared::App;
use herald_shared::credentials::OpenCredentials;
use herald_shared::dispatch::{DispatchConfig, Dispatcher, Disposition};
use herald_shared::domain::TenantId;
use herald_shared::domain::message::{MessageId, MessageStatus};
use herald_shared::domain::provider::ProviderSettings;
use herald_shared::domain::status_event::StatusEvent;
use herald_shared::domain::webhook_endpoint::{DisablePolicy, UrlPolicy, WebhookEndpointId};
use herald_shared::providers::{Accepted, ChannelSender, Outbound, SendError};
use herald_shared::status_webhooks::worker::{Outcome, Worker, WorkerConfig};
use herald_shared::status_webhooks::{Delivery, MemoryStatusEvents, StatusEventSink, verify};
use herald_shared::store::WebhookEndpointStore;
use herald_shared::store::memory::MemoryStore;
use serde_json::{Value, json};

use crate::support::{PassingChecker, fixture};

/// Accepts every message, or refuses the recipient for good when told to.
#[derive(Default)]
struct Provider {
    refuse: Mutex<bool>,
}

#[async_trait]
impl ChannelSender for Provider {
    async fn send(
        &self,
        _: &ProviderSettings,
        _: &OpenCredentials,
        message: &Outbound<'_>,
    ) -> Result<Accepted, SendError> {
        if *self.refuse.lock().expect("lock") {
            return Err(SendError::Permanent {
                code: "21211".into(),
                reason: "invalid 'To' phone number".into(),
            });
        }
        Ok(Accepted {
            provider_message_id: format!("pm-{}", message.message_id),
            cost: None,
            segments: None,
        })
    }
}

fn with_body(mut event: Value, body: Value) -> Value {
    event["body"] = json!(body.to_string());
    event
}

fn with_endpoint(mut event: Value, id: &str) -> Value {
    event["pathParameters"]["endpointId"] = json!(id);
    event
}

fn as_role(mut event: Value, role: &str, tenant: &str) -> Value {
    let claims = &mut event["requestContext"]["authorizer"]["jwt"]["claims"];
    claims["herald:role"] = json!(role);
    claims["herald:tenant"] = json!(tenant);
    event
}

struct Harness {
    app: App,
    store: Arc<MemoryStore>,
    events: Arc<MemoryStatusEvents>,
    provider: Arc<Provider>,
}

impl Harness {
    /// In-memory app whose endpoint store and idempotency records the test can inspect;
    /// loopback endpoints allowed when `local`.
    fn new(local: bool) -> Self {
        let provider = Arc::new(Provider::default());
        let mut app = App::in_memory(Arc::new(PassingChecker), provider.clone());
        let store = Arc::new(MemoryStore::default());
        let events = Arc::new(MemoryStatusEvents::default());
        app.webhook_endpoints = store.clone();
        app.idempotency = store.clone();
        app.status_events = events.clone();
        app.webhook_urls = UrlPolicy {
            allow_loopback: local,
        };
        Self {
            app,
            store,
            events,
            provider,
        }
    }

    async fn call(&self, event: Value) -> (u16, Value, HashMap<String, String>) {
        crate::support::serve(&self.app, event).await
    }

    async fn ok(&self, event: Value) -> Value {
        crate::support::ok(&self.app, event).await
    }

    async fn create(&self, body: Value) -> Value {
        self.ok(with_body(
            fixture("config-api/create-webhook-endpoint"),
            body,
        ))
        .await
    }

    fn tenant() -> TenantId {
        TenantId::parse("acme-events").expect("tenant")
    }
}

fn erp() -> Value {
    json!({"url": "https://erp.acme-events.example/herald", "events": ["message.sent", "message.failed"]})
}

// ---- the endpoint API ----

#[tokio::test]
async fn the_secret_is_shown_once_and_stored_sealed() {
    let h = Harness::new(false);
    let (status, created, _) = h.call(fixture("config-api/create-webhook-endpoint")).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(
        id.starts_with("ep_") && secret.starts_with("whsec_"),
        "{created}"
    );
    assert_eq!(
        created["url"],
        "https://erp.acme-events.example/herald/webhooks"
    );
    assert_eq!(
        created["events"],
        json!(["message.sent", "message.delivered", "message.failed"])
    );
    assert_eq!(created["active"], true);
    assert!(created["created_at"].is_string());

    // A retried create (same Idempotency-Key) is the same endpoint, with the same secret.
    let (status, replay, headers) = h.call(fixture("config-api/create-webhook-endpoint")).await;
    assert_eq!(status, 201);
    assert_eq!(
        headers.get("idempotent-replayed").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        (replay["id"].as_str(), replay["secret"].as_str()),
        (Some(id.as_str()), Some(secret.as_str()))
    );
    assert_eq!(
        h.store
            .endpoints(&Harness::tenant())
            .await
            .expect("store")
            .len(),
        1
    );

    // Never again: not in reads, not in the stored item, not in the audit log.
    let got = h
        .ok(with_endpoint(
            fixture("config-api/get-webhook-endpoint"),
            &id,
        ))
        .await;
    let listed = h.ok(fixture("config-api/list-webhook-endpoints")).await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    for shown in [&got, &listed] {
        let text = shown.to_string();
        assert!(
            !text.contains(&secret) && !text.contains("whsec_"),
            "{text}"
        );
        assert!(!text.contains("ciphertext"), "sealed form shown: {text}");
    }
    let stored = h
        .store
        .endpoint(
            &Harness::tenant(),
            &WebhookEndpointId::parse(&id).expect("id"),
        )
        .await
        .expect("store")
        .expect("endpoint");
    assert!(
        !serde_json::to_string(&stored)
            .expect("json")
            .contains(&secret[6..])
    );
    let opened = h
        .app
        .vault
        .open_endpoint_secret(&Harness::tenant(), &stored.id, &stored.config.secret)
        .await
        .expect("opens");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), secret);
    let audit = h.store.audit_entries();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "webhook_endpoint.created");
    assert_eq!(audit[0].target, format!("tenant/webhook-endpoint/{id}"));
    assert!(
        !serde_json::to_string(&audit)
            .expect("json")
            .contains(&secret)
    );

    // Rotation: a new secret, once; the old one no longer opens from the store.
    let rotated = h
        .ok(with_endpoint(
            fixture("config-api/rotate-webhook-endpoint-secret"),
            &id,
        ))
        .await;
    let new_secret = rotated["secret"].as_str().expect("secret");
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    let stored = h
        .store
        .endpoint(&Harness::tenant(), &stored.id)
        .await
        .expect("store")
        .expect("endpoint");
    let opened = h
        .app
        .vault
        .open_endpoint_secret(&Harness::tenant(), &stored.id, &stored.config.secret)
        .await
        .expect("opens");
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), new_secret);
    assert_eq!(
        h.store.audit_entries().last().map(|a| a.action.clone()),
        Some("webhook_endpoint.secret_rotated".to_owned())
    );
}

#[tokio::test]
async fn urls_and_event_types_are_checked_with_the_field_named() {
    let h = Harness::new(false);
    let cases = [
        (
            json!({"url": "http://erp.acme.example/hook", "events": ["message.sent"]}),
            "insecure_url",
            "url",
        ),
        (
            json!({"url": "https://10.0.0.7/hook", "events": ["message.sent"]}),
            "private_address",
            "url",
        ),
        (
            json!({"url": "https://169.254.169.254/latest", "events": ["message.sent"]}),
            "private_address",
            "url",
        ),
        (
            json!({"url": "http://127.0.0.1:9000/hook", "events": ["message.sent"]}),
            "insecure_url",
            "url",
        ),
        (
            json!({"url": "https://localhost/hook", "events": ["message.sent"]}),
            "private_address",
            "url",
        ),
        (
            json!({"url": "https://ops:hunter2@erp.acme.example/hook", "events": ["message.sent"]}),
            "credentials_in_url",
            "url",
        ),
        (
            json!({"url": "erp.acme.example/hook", "events": ["message.sent"]}),
            "invalid_url",
            "url",
        ),
        (
            json!({"url": "https://erp.acme.example/hook", "events": []}),
            "required",
            "events",
        ),
        (
            json!({"url": "https://erp.acme.example/hook", "events": ["message.sent", "message.opened"]}),
            "unknown_event_type",
            "events[1]",
        ),
        (
            json!({"url": "https://erp.acme.example/hook"}),
            "invalid",
            "body",
        ),
        (
            json!({"url": "https://erp.acme.example/hook", "events": ["message.sent"], "secret": "mine"}),
            "invalid",
            "secret",
        ),
    ];
    for (i, (body, code, field)) in cases.into_iter().enumerate() {
        let mut event = with_body(fixture("config-api/create-webhook-endpoint"), body.clone());
        event["headers"]["idempotency-key"] = json!(format!("bad-{i}"));
        let (status, reply, _) = h.call(event).await;
        assert_eq!(
            (
                status,
                reply["error"]["code"].as_str(),
                reply["error"]["field"].as_str()
            ),
            (400, Some(code), Some(field)),
            "{body}: {reply}"
        );
    }
    assert!(
        h.store
            .endpoints(&Harness::tenant())
            .await
            .expect("store")
            .is_empty()
    );
    assert!(h.store.audit_entries().is_empty(), "nothing written");

    // Only the local stack's policy lets loopback through.
    let local = Harness::new(true);
    let created = local
        .create(json!({"url": "http://127.0.0.1:9000/hook", "events": ["message.sent"]}))
        .await;
    assert_eq!(created["url"], "http://127.0.0.1:9000/hook");
    let mut private = with_body(
        fixture("config-api/create-webhook-endpoint"),
        json!({"url": "http://10.0.0.7/hook", "events": ["message.sent"]}),
    );
    private["headers"]["idempotency-key"] = json!("private");
    let (status, reply, _) = local.call(private).await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("url"))
    );
}

#[tokio::test]
async fn roles_tenants_and_changes() {
    let h = Harness::new(false);
    let created = h.create(erp()).await;
    let id = created["id"].as_str().expect("id");

    // Event managers read, only tenant admins change; other tenants see nothing.
    let manager = |e: Value| as_role(e, "event_manager", "acme-events");
    assert_eq!(
        h.call(manager(fixture("config-api/list-webhook-endpoints")))
            .await
            .0,
        200
    );
    let (status, reply, _) = h
        .call(manager(fixture("config-api/create-webhook-endpoint")))
        .await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    assert_eq!(
        h.call(manager(with_endpoint(
            fixture("config-api/delete-webhook-endpoint"),
            id
        )))
        .await
        .0,
        403
    );
    let globex = |e: Value| as_role(e, "tenant_admin", "globex");
    for route in [
        "get-webhook-endpoint",
        "update-webhook-endpoint",
        "delete-webhook-endpoint",
        "rotate-webhook-endpoint-secret",
    ] {
        let (status, reply, _) = h
            .call(globex(with_endpoint(
                fixture(&format!("config-api/{route}")),
                id,
            )))
            .await;
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{route}"
        );
    }
    assert_eq!(
        h.ok(globex(fixture("config-api/list-webhook-endpoints")))
            .await,
        json!({"items": [], "next": null})
    );
    let (status, _, _) = h
        .call(with_endpoint(
            fixture("config-api/get-webhook-endpoint"),
            "ep_not-an-id",
        ))
        .await;
    assert_eq!(status, 404);

    // A change: events replaced, the rest kept; bad values name their field.
    let updated = h
        .ok(with_endpoint(
            fixture("config-api/update-webhook-endpoint"),
            id,
        ))
        .await;
    assert_eq!(
        updated["events"],
        json!([
            "message.sent",
            "message.delivered",
            "message.failed",
            "message.bounced"
        ])
    );
    assert_eq!(updated["url"], "https://erp.acme-events.example/herald");
    let bad = with_body(
        with_endpoint(fixture("config-api/update-webhook-endpoint"), id),
        json!({"url": "https://192.168.1.10/hook"}),
    );
    let (status, reply, _) = h.call(bad).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (400, Some("private_address"))
    );
    let empty = with_body(
        with_endpoint(fixture("config-api/update-webhook-endpoint"), id),
        json!({}),
    );
    assert_eq!(h.call(empty).await.0, 400);

    // Delete: gone for reads and for the worker.
    assert_eq!(
        h.call(with_endpoint(
            fixture("config-api/delete-webhook-endpoint"),
            id
        ))
        .await
        .0,
        204
    );
    assert_eq!(
        h.call(with_endpoint(
            fixture("config-api/get-webhook-endpoint"),
            id
        ))
        .await
        .0,
        404
    );
    let actions: Vec<String> = h
        .store
        .audit_entries()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        actions,
        [
            "webhook_endpoint.created",
            "webhook_endpoint.updated",
            "webhook_endpoint.deleted"
        ]
    );
    assert!(
        h.store.audit_entries().iter().all(|a| a
            .before
            .iter()
            .chain(&a.after)
            .all(|d| d.len() == 64)),
        "digests only"
    );
}

// ---- the worker, posting to a receiver on 127.0.0.1 ----

/// A scripted answer: a status and a `Retry-After` (or `"redirect"`: a `Location`).
type Answer = (u16, Option<&'static str>);

/// A receiver that answers from a script (then 200), records every request, and verifies each
/// signature with the secret it is given.
#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<Vec<Answer>>>,
    seen: Arc<Mutex<Vec<(HeaderMap, String, u16)>>>,
    redirected: Arc<Mutex<usize>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> Response {
    let (status, retry_after) = {
        let mut script = r.script.lock().expect("lock");
        if script.is_empty() {
            (200, None)
        } else {
            script.remove(0)
        }
    };
    r.seen.lock().expect("lock").push((headers, body, status));
    let status = StatusCode::from_u16(status).expect("status");
    match retry_after {
        Some("redirect") => (status, [("location", "/elsewhere")]).into_response(),
        Some(seconds) => (status, [("retry-after", seconds)]).into_response(),
        None => status.into_response(),
    }
}

async fn elsewhere(State(r): State<Receiver>) -> StatusCode {
    *r.redirected.lock().expect("lock") += 1;
    StatusCode::OK
}

impl Receiver {
    async fn start(script: Vec<Answer>) -> (Self, String) {
        let receiver = Receiver {
            script: Arc::new(Mutex::new(script)),
            ..Receiver::default()
        };
        let app = Router::new()
            .route("/hook", post(receive))
            .route("/elsewhere", post(elsewhere).get(elsewhere))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn seen(&self) -> Vec<(HeaderMap, String, u16)> {
        self.seen.lock().expect("lock").clone()
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn event_for(id: &str) -> StatusEvent {
    let text = fixture("status-webhooks/sqs-batch")["Records"][0]["body"]
        .as_str()
        .expect("body")
        .to_owned();
    let delivery: Delivery = serde_json::from_str(&text).expect("a delivery");
    let mut event = delivery.event;
    event.id = format!("evt_test_{id}");
    event
}

struct Setup {
    h: Harness,
    receiver: Receiver,
    worker: Worker,
    delivery: Delivery,
    secret: String,
}

async fn setup(script: Vec<Answer>, schedule: &[u64], disable: DisablePolicy) -> Setup {
    let h = Harness::new(true);
    let (receiver, url) = Receiver::start(script).await;
    let created = h
        .create(json!({"url": url, "events": ["message.sent", "message.failed"]}))
        .await;
    let config = WorkerConfig {
        schedule: schedule.iter().copied().map(Duration::from_secs).collect(),
        disable,
        urls: UrlPolicy {
            allow_loopback: true,
        },
        timeout: Duration::from_secs(2),
    };
    let worker = Worker::from_app(&h.app, config).expect("worker");
    let delivery = Delivery {
        endpoint_id: WebhookEndpointId::parse(created["id"].as_str().expect("id")).expect("id"),
        tenant: Harness::tenant(),
        event: event_for("1"),
    };
    Setup {
        h,
        receiver,
        worker,
        delivery,
        secret: created["secret"].as_str().expect("secret").to_owned(),
    }
}

fn never() -> DisablePolicy {
    DisablePolicy {
        failures: 1000,
        over: Duration::ZERO,
    }
}

#[tokio::test]
async fn deliveries_are_signed_and_failures_retried_after_at_least_retry_after() {
    let s = setup(vec![(503, Some("7")), (500, None)], &[1, 1], never()).await;
    let first = s.worker.deliver(&s.delivery, 1).await;
    assert!(
        matches!(first, Outcome::RetryAfter(wait) if wait >= Duration::from_secs(7)),
        "Retry-After is a floor: {first:?}"
    );
    let second = s.worker.deliver(&s.delivery, 2).await;
    assert!(
        matches!(second, Outcome::RetryAfter(wait) if wait <= Duration::from_secs(2)),
        "{second:?}"
    );
    let health =
        s.h.store
            .endpoint(&Harness::tenant(), &s.delivery.endpoint_id)
            .await
            .expect("store")
            .expect("endpoint")
            .health;
    assert_eq!(health.consecutive_failures, 2);
    assert!(health.failing_since.is_some());

    assert_eq!(s.worker.deliver(&s.delivery, 3).await, Outcome::Delivered);
    let health =
        s.h.store
            .endpoint(&Harness::tenant(), &s.delivery.endpoint_id)
            .await
            .expect("store")
            .expect("endpoint")
            .health;
    assert_eq!(
        (health.consecutive_failures, health.failing_since),
        (0, None),
        "streak cleared"
    );
    assert!(health.last_success_at.is_some());

    let seen = s.receiver.seen();
    assert_eq!(
        seen.iter()
            .map(|(_, _, status)| *status)
            .collect::<Vec<_>>(),
        [503, 500, 200]
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for (headers, body, _) in &seen {
        assert_eq!(
            header(headers, "webhook-id"),
            "evt_test_1",
            "one id for every attempt"
        );
        assert_eq!(header(headers, "content-type"), "application/json");
        assert_eq!(
            verify(
                &s.secret,
                header(headers, "webhook-id"),
                header(headers, "webhook-timestamp"),
                header(headers, "webhook-signature"),
                body.as_bytes(),
                now,
            ),
            Ok(()),
            "signature of {body}"
        );
        let posted: StatusEvent = serde_json::from_str(body).expect("the event as JSON");
        assert_eq!(posted, s.delivery.event);
    }
}

#[tokio::test]
async fn a_spent_schedule_gives_up_and_redirects_are_not_followed() {
    let s = setup(
        vec![(500, None), (302, Some("redirect")), (500, None)],
        &[1, 1],
        never(),
    )
    .await;
    assert!(matches!(
        s.worker.deliver(&s.delivery, 1).await,
        Outcome::RetryAfter(_)
    ));
    assert!(matches!(
        s.worker.deliver(&s.delivery, 2).await,
        Outcome::RetryAfter(_)
    ));
    assert_eq!(s.worker.deliver(&s.delivery, 3).await, Outcome::GaveUp);
    assert_eq!(s.receiver.seen().len(), 3);
    assert_eq!(
        *s.receiver.redirected.lock().expect("lock"),
        0,
        "the redirect was not followed"
    );
}

#[tokio::test]
async fn sustained_failures_disable_the_endpoint_with_an_audit_entry() {
    let failing = vec![(500, None); 10];
    let s = setup(
        failing,
        &[1, 1, 1, 1, 1],
        DisablePolicy {
            failures: 3,
            over: Duration::ZERO,
        },
    )
    .await;
    assert!(matches!(
        s.worker.deliver(&s.delivery, 1).await,
        Outcome::RetryAfter(_)
    ));
    assert!(matches!(
        s.worker.deliver(&s.delivery, 2).await,
        Outcome::RetryAfter(_)
    ));
    assert_eq!(
        s.worker.deliver(&s.delivery, 3).await,
        Outcome::Dropped("endpoint disabled")
    );
    let endpoint =
        s.h.store
            .endpoint(&Harness::tenant(), &s.delivery.endpoint_id)
            .await
            .expect("store")
            .expect("endpoint");
    assert!(!endpoint.active);
    assert!(endpoint.health.disabled_at.is_some());
    assert!(
        endpoint
            .health
            .disabled_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("3 consecutive failed deliveries")),
        "{:?}",
        endpoint.health
    );
    let audit = s.h.store.audit_entries();
    let disabled = audit
        .iter()
        .find(|a| a.action == "webhook_endpoint.disabled")
        .expect("an audit entry");
    assert_eq!(disabled.actor, "status-webhooks");
    assert_eq!(
        disabled.target,
        format!("tenant/webhook-endpoint/{}", endpoint.id)
    );

    // Later events are not posted to it.
    let later = Delivery {
        event: event_for("2"),
        ..s.delivery.clone()
    };
    assert_eq!(
        s.worker.deliver(&later, 1).await,
        Outcome::Dropped("endpoint inactive")
    );
    assert_eq!(s.receiver.seen().len(), 3);

    // Re-enabling starts a clean record.
    let reenabled =
        s.h.ok(with_body(
            with_endpoint(
                fixture("config-api/update-webhook-endpoint"),
                endpoint.id.as_str(),
            ),
            json!({"active": true}),
        ))
        .await;
    assert_eq!(reenabled["active"], true);
    assert_eq!(reenabled["health"], json!({"consecutive_failures": 0}));
    assert!(matches!(
        s.worker.deliver(&later, 1).await,
        Outcome::RetryAfter(_)
    ));
}

#[tokio::test]
async fn unusable_messages_and_gone_endpoints() {
    let s = setup(vec![], &[1], never()).await;
    assert!(matches!(
        s.worker.deliver_body("{\"message_id\": 1}", 1).await,
        Outcome::Poison(_)
    ));
    let gone = Delivery {
        endpoint_id: WebhookEndpointId::generate(),
        ..s.delivery.clone()
    };
    assert_eq!(
        s.worker.deliver(&gone, 1).await,
        Outcome::Dropped("endpoint deleted")
    );
    let unwanted = Delivery {
        event: StatusEvent {
            kind: herald_shared::domain::status_event::StatusEventType::MessageDelivered,
            ..event_for("3")
        },
        ..s.delivery.clone()
    };
    assert_eq!(
        s.worker.deliver(&unwanted, 1).await,
        Outcome::Dropped("event type no longer wanted")
    );
    assert!(s.receiver.seen().is_empty());

    // The sample batch (endpoints this store does not have): both acknowledged, none retried.
    let batch: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_value(fixture("status-webhooks/sqs-batch")).expect("an SQS event");
    // Nothing is retried, so no visibility change is sent; were one sent, it would go nowhere.
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("eu-west-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build(),
    );
    let queue = herald_shared::dispatch::sqs::QueueClient::new(sqs);
    let response = herald_shared::status_webhooks::worker::handle(&s.worker, &queue, batch).await;
    assert!(response.batch_item_failures.is_empty());
}

// ---- dispatch publishes what it settles ----

/// Fails its first `failures` publishes, then keeps what it is given.
struct FlakySink {
    failures: Mutex<u32>,
    kept: MemoryStatusEvents,
}

#[async_trait]
impl StatusEventSink for FlakySink {
    async fn publish(&self, events: &[StatusEvent]) -> anyhow::Result<()> {
        {
            let mut failures = self.failures.lock().expect("lock");
            if *failures > 0 {
                *failures -= 1;
                anyhow::bail!("the queue is unavailable");
            }
        }
        self.kept.publish(events).await
    }
}

impl Harness {
    /// An event with an SMS provider and templates, completed; returns the id of one SMS sent
    /// to it (accepted, not yet dispatched).
    async fn accepted_sms(&self) -> MessageId {
        self.ok(fixture("config-api/put-event-settings")).await;
        self.ok(fixture("config-api/put-tenant-brand")).await;
        self.ok(fixture("config-api/create-tenant-provider")).await;
        self.ok(with_body(
            fixture("config-api/create-tenant-provider"),
            json!({"channel": "email", "name": "Brevo", "settings": {"kind": "brevo", "from_address": "events@acme.example"},
                   "credentials": {"api_key": "xkeysib-demo-000000000000"}}),
        ))
        .await;
        for category in ["invitation", "rsvp_confirmation"] {
            for (channel, t) in [
                ("sms", "put-tenant-template"),
                ("email", "put-tenant-email-template"),
            ] {
                let mut event = fixture(&format!("config-api/{t}"));
                event["pathParameters"]["category"] = json!(category);
                event["pathParameters"]["channel"] = json!(channel);
                self.ok(event).await;
            }
        }
        self.ok(fixture("wizard-completion/complete-wizard")).await;
        let reply = self.ok(fixture("send-api/send-message")).await;
        MessageId::parse(reply["messages"][0]["id"].as_str().expect("id")).expect("message id")
    }
}

#[tokio::test]
async fn dispatch_publishes_the_settled_status() {
    let h = Harness::new(false);
    let id = h.accepted_sms().await;
    let dispatcher = Dispatcher::from_app(&h.app, DispatchConfig::default());
    assert_eq!(dispatcher.dispatch(&id, 1).await, Disposition::Done);
    let published = h.events.published();
    assert_eq!(published.len(), 1, "{published:?}");
    let event = serde_json::to_value(&published[0]).expect("json");
    assert_eq!(event["id"], format!("evt_{id}_sent"));
    assert_eq!(event["type"], "message.sent");
    assert_eq!(
        event["version"],
        herald_shared::domain::status_event::STATUS_EVENT_VERSION
    );
    assert_eq!(event["tenant"], "acme-events");
    assert_eq!(event["data"]["message_id"], id.as_str());
    assert_eq!(event["data"]["provider"], "twilio");
    assert!(
        !event.to_string().contains("+260971234567"),
        "no recipient address: {event}"
    );

    // A permanent refusal is published as message.failed with its reason.
    *h.provider.refuse.lock().expect("lock") = true;
    let mut again = fixture("send-api/send-message");
    again["headers"]["idempotency-key"] = json!("second-send");
    let reply = h.ok(again).await;
    let failed = MessageId::parse(reply["messages"][0]["id"].as_str().expect("id")).expect("id");
    assert_eq!(dispatcher.dispatch(&failed, 1).await, Disposition::Done);
    let last = h.events.published().pop().expect("an event");
    assert_eq!(last.id, format!("evt_{failed}_failed"));
    assert!(
        serde_json::to_string(&last)
            .expect("json")
            .contains("21211")
    );
}

#[tokio::test]
async fn a_failed_publish_is_retried_and_the_redelivery_publishes_again() {
    let mut h = Harness::new(false);
    let sink = Arc::new(FlakySink {
        failures: Mutex::new(1),
        kept: MemoryStatusEvents::default(),
    });
    h.app.status_events = sink.clone();
    let id = h.accepted_sms().await;
    let dispatcher = Dispatcher::from_app(&h.app, DispatchConfig::default());
    assert!(
        matches!(
            dispatcher.dispatch(&id, 1).await,
            Disposition::RetryAfter(_)
        ),
        "the record goes back to the queue"
    );
    let stored = h
        .app
        .messages
        .message(&id)
        .await
        .expect("store")
        .expect("message");
    assert_eq!(
        stored.message.status,
        MessageStatus::Sent,
        "settled before publishing"
    );
    assert!(sink.kept.published().is_empty());

    // The redelivery finds it settled, sends nothing, and publishes its status.
    assert_eq!(dispatcher.dispatch(&id, 2).await, Disposition::Done);
    let published = sink.kept.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].id, format!("evt_{id}_sent"));
}
