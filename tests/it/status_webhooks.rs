//! Status webhooks end to end against the emulator: an endpoint registered through the
//! configuration API, a message sent and dispatched, the status-webhooks queue (from the
//! template, with the local stack's short retry schedule) driven through the worker, and a
//! receiver on 127.0.0.1 that verifies every signature. Each test has its own emulator.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use herald_shared::dispatch::sqs::QueueClient;
use herald_shared::status_webhooks::verify;
use herald_shared::status_webhooks::worker::{Worker, WorkerConfig, handle};
use serde_json::{Value, json};

use crate::harness::World;

/// What the local stack sets: loopback receivers, retries after 1, 1 and 2 seconds, and an
/// endpoint disabled at its third consecutive failure.
const PARAMS: [&str; 4] = [
    "WebhooksAllowLoopback=true",
    "StatusWebhookRetrySchedule=1,1,2",
    "StatusWebhookDisableAfterFailures=3",
    "StatusWebhookDisableAfterSeconds=0",
];

/// One request the receiver got: when, what, and how it answered.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    id: String,
    body: Value,
    status: u16,
    signature_ok: bool,
}

/// A scripted answer: a status and a `Retry-After`.
type Answer = (u16, Option<&'static str>);

/// A tenant system's webhook receiver: answers from a script (then `otherwise`), verifying
/// each delivery's signature with the secret it is told once the endpoint exists.
#[derive(Clone)]
struct Receiver {
    script: Arc<Mutex<Vec<Answer>>>,
    otherwise: u16,
    secret: Arc<Mutex<String>>,
    received: Arc<Mutex<Vec<Received>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let secret = r.secret.lock().expect("lock").clone();
    let signature_ok = verify(
        &secret,
        &header("webhook-id"),
        &header("webhook-timestamp"),
        &header("webhook-signature"),
        body.as_bytes(),
        now,
    )
    .is_ok();
    let (status, retry_after) = {
        let mut script = r.script.lock().expect("lock");
        if script.is_empty() {
            (r.otherwise, None)
        } else {
            script.remove(0)
        }
    };
    r.received.lock().expect("lock").push(Received {
        at: Instant::now(),
        id: header("webhook-id"),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
        status,
        signature_ok,
    });
    let status = StatusCode::from_u16(status).expect("status");
    match retry_after {
        Some(seconds) => (status, [("retry-after", seconds)]).into_response(),
        None => status.into_response(),
    }
}

impl Receiver {
    async fn start(script: Vec<Answer>, otherwise: u16) -> (Self, String) {
        let receiver = Receiver {
            script: Arc::new(Mutex::new(script)),
            otherwise,
            secret: Arc::default(),
            received: Arc::default(),
        };
        let app = Router::new()
            .route("/herald/webhooks", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/herald/webhooks",
            listener.local_addr().expect("address")
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }
}

/// Registers an endpoint for `message.sent` at `url`; returns (id, secret).
async fn register(w: &World, url: &str, receiver: &Receiver) -> (String, String) {
    let created = w
        .ok(w
            .event("config-api/create-webhook-endpoint")
            .body(json!({"url": url, "events": ["message.sent"], "description": "test receiver"})))
        .await;
    let id = created["id"].as_str().expect("id").to_owned();
    let secret = created["secret"].as_str().expect("secret").to_owned();
    *receiver.secret.lock().expect("lock") = secret.clone();
    (id, secret)
}

/// Sends one SMS (with its own idempotency key) and dispatches it; returns its message id.
async fn send_and_dispatch(w: &World, key: &str) -> String {
    let reply = w
        .ok(w
            .event("send-api/send-message")
            .header("idempotency-key", key))
        .await;
    let (batch, failed) = w.deliver(&w.dispatcher(), "sms", 1).await;
    assert_eq!((batch.len(), failed.len()), (1, 0), "dispatched");
    reply["messages"][0]["id"]
        .as_str()
        .expect("message id")
        .to_owned()
}

async fn queue_depth(w: &World) -> (u64, u64) {
    let out = w
        .sqs()
        .get_queue_attributes()
        .queue_url(w.stack.queue("status-webhooks", "url").expect("url"))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .expect("queue attributes");
    let count = |name: aws_sdk_sqs::types::QueueAttributeName| {
        out.attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages),
        count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

/// Drives the status-webhooks queue through the worker (as Lambda's event source would) until
/// nothing is left in it, visible or waiting for its retry.
async fn drain(w: &World, worker: &Worker) {
    let queue = QueueClient::new(w.sqs());
    for _ in 0..40 {
        w.drive("status-webhooks", async |event| {
            handle(worker, &queue, event).await
        })
        .await;
        if queue_depth(w).await == (0, 0) {
            return;
        }
    }
    panic!(
        "the status-webhooks queue did not drain: {:?}",
        queue_depth(w).await
    );
}

fn worker(w: &World) -> Worker {
    let config = WorkerConfig::from_vars(&|name| w.stack.env.get(name).cloned())
        .expect("the stack's worker environment");
    assert!(
        config.urls.allow_loopback,
        "the local stack allows loopback"
    );
    Worker::from_app(&w.app, config).expect("worker")
}

#[tokio::test]
async fn a_status_webhook_is_retried_until_accepted_and_signed() {
    let w = World::isolated_with(&PARAMS).await;
    w.live_event(&[]).await;
    let (receiver, url) = Receiver::start(vec![(500, Some("4")), (500, None)], 200).await;
    let (endpoint, secret) = register(&w, &url, &receiver).await;
    let message = send_and_dispatch(&w, "webhook-retries").await;
    drain(&w, &worker(&w)).await;

    let received = receiver.received();
    assert_eq!(
        received.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 500, 200],
        "two failures, then one accepted delivery: {received:#?}"
    );
    let expected_id = format!("evt_{message}_sent");
    for r in &received {
        assert_eq!(r.id, expected_id, "the same webhook-id on every attempt");
        assert!(
            r.signature_ok,
            "signature verified with the create response's secret"
        );
        assert_eq!(r.body["type"], "message.sent");
        assert_eq!(r.body["version"], 1, "the payload's version");
        assert_eq!(r.body["data"]["message_id"], message.as_str());
        assert_eq!(r.body["tenant"], w.tenant.as_str());
    }
    // The schedule's first wait is 1 s (at most 1.2 s with jitter, 2 s once rounded up to the
    // visibility timeout's whole seconds): only the receiver's Retry-After makes it 4.
    assert!(
        received[1].at - received[0].at >= Duration::from_millis(3900),
        "Retry-After: 4 was honoured: {:?}",
        received[1].at - received[0].at
    );

    let shown = w
        .ok(w
            .event("config-api/get-webhook-endpoint")
            .path("endpointId", &endpoint))
        .await;
    assert_eq!(shown["active"], true);
    assert_eq!(shown["health"]["consecutive_failures"], 0, "{shown}");
    assert!(shown["health"]["last_success_at"].is_string(), "{shown}");

    // The secret exists only sealed: not in the endpoint or idempotency tables, not in logs.
    for table in ["WEBHOOK_ENDPOINTS_TABLE", "IDEMPOTENCY_TABLE"] {
        let scan = w
            .dynamodb()
            .scan()
            .table_name(&w.stack.env[table])
            .send()
            .await
            .expect("scan");
        let stored = format!("{:?}", scan.items());
        assert!(stored.contains(&endpoint), "{table} holds the endpoint");
        assert!(!stored.contains(&secret[6..]), "the secret in {table}");
    }
    let logged = String::from_utf8_lossy(
        &crate::harness::logs()
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default(),
    )
    .to_string();
    assert!(!logged.contains(&secret[6..]), "the secret was logged");
    assert!(
        !logged.contains("/herald/webhooks"),
        "an endpoint URL was logged"
    );
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_is_disabled_and_gets_nothing_more() {
    let w = World::isolated_with(&PARAMS).await;
    w.live_event(&[]).await;
    let (receiver, url) = Receiver::start(Vec::new(), 503).await;
    let (endpoint, _) = register(&w, &url, &receiver).await;
    let worker = worker(&w);
    send_and_dispatch(&w, "webhook-disabled-1").await;
    drain(&w, &worker).await;

    assert_eq!(
        receiver.received().len(),
        3,
        "disabled at the third consecutive failure, before the schedule was spent"
    );
    let shown = w
        .ok(w
            .event("config-api/get-webhook-endpoint")
            .path("endpointId", &endpoint))
        .await;
    assert_eq!(shown["active"], false, "{shown}");
    assert!(
        shown["health"]["disabled_reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("3 consecutive failed deliveries")),
        "{shown}"
    );
    assert!(shown["health"]["disabled_at"].is_string());

    // Read back through the chained audit log, which must still verify.
    let window = herald_shared::audit::Window::default();
    let entries = herald_shared::audit::entries(w.app.audit.as_ref(), &w.tenant, window)
        .await
        .expect("audit entries");
    let disabled: Vec<_> = entries
        .iter()
        .filter(|e| e.entry.action == "webhook_endpoint.disabled")
        .collect();
    assert_eq!(disabled.len(), 1, "one audit entry for the disabling");
    assert_eq!(disabled[0].entry.actor, "status-webhooks");
    assert_eq!(
        disabled[0].entry.target,
        format!("tenant/webhook-endpoint/{endpoint}")
    );
    let report =
        herald_shared::audit::verify(w.app.audit.as_ref(), &w.tenant, window, None, None, &|_| {})
            .await
            .expect("verification");
    assert!(report.intact(), "{report:?}");

    // A later status change reaches nobody.
    send_and_dispatch(&w, "webhook-disabled-2").await;
    drain(&w, &worker).await;
    assert_eq!(
        receiver.received().len(),
        3,
        "nothing posted to a disabled endpoint"
    );
}
