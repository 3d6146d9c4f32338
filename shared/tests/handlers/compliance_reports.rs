//! Handler tests for compliance reports and tenant settings (message retention): the
//! configuration API driven by the sample requests in `events/`, over in-memory stores, after
//! real sends, dispatch (one recipient error), receipts (a hard bounce, a STOP) and
//! configuration changes by people. The emulator-backed version is `tests/it/reports.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use herald_shared::App;
use herald_shared::api;
use herald_shared::credentials::OpenCredentials;
use herald_shared::dispatch::{DispatchConfig, Dispatcher, Disposition};
use herald_shared::domain::TenantId;
use herald_shared::domain::message::MessageId;
use herald_shared::domain::provider::{ProviderKind, ProviderSettings};
use herald_shared::domain::receipt::{InboundMessage, Notification, Receipt};
use herald_shared::domain::report::EntryClass;
use herald_shared::providers::{Accepted, ChannelSender, Outbound, SendError};
use herald_shared::reports::CSV_COLUMNS;
use herald_shared::store::memory::MemoryStore;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::{PassingChecker, fixture};

/// The number Twilio refuses for good in these tests.
const INVALID_NUMBER: &str = "+260971234568";

/// Accepts every message (provider id `pm-<message id>`) except those to [`INVALID_NUMBER`].
struct Sender;

#[async_trait]
impl ChannelSender for Sender {
    async fn send(
        &self,
        _: &ProviderSettings,
        _: &OpenCredentials,
        message: &Outbound<'_>,
    ) -> Result<Accepted, SendError> {
        if message.to == INVALID_NUMBER {
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

fn with_claim(mut event: Value, name: &str, value: &str) -> Value {
    event["requestContext"]["authorizer"]["jwt"]["claims"][name] = json!(value);
    event
}

/// A report request with its query string replaced (raw, as API Gateway passes it).
fn with_query(mut event: Value, query: &[(&str, &str)]) -> Value {
    let raw = url_encode(query);
    event["rawQueryString"] = json!(raw);
    event["queryStringParameters"] = query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    event
}

fn url_encode(query: &[(&str, &str)]) -> String {
    query
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace('+', "%2B").replace(':', "%3A")))
        .collect::<Vec<_>>()
        .join("&")
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("formats")
}

struct Harness {
    app: App,
    store: Arc<MemoryStore>,
}

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    text: String,
    body: Value,
}

impl Harness {
    fn new() -> Self {
        let store = Arc::new(MemoryStore::default());
        let app = App::over_memory(store.clone(), Arc::new(PassingChecker), Arc::new(Sender));
        Self { app, store }
    }

    async fn call(&self, event: Value) -> Reply {
        let request =
            lambda_http::request::from_str(&event.to_string()).expect("valid API Gateway event");
        let response = api::serve_any(&self.app, request)
            .await
            .expect("handlers answer every request");
        let text = match response.body() {
            lambda_http::Body::Text(t) => t.clone(),
            _ => String::new(),
        };
        Reply {
            status: response.status().as_u16(),
            headers: response
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                .collect(),
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    async fn ok(&self, event: Value) -> Value {
        let route = event["routeKey"].clone();
        let reply = self.call(event).await;
        assert!(
            (200..300).contains(&reply.status),
            "{route} answered {}: {}",
            reply.status,
            reply.text
        );
        reply.body
    }

    /// `acme-events`'s gala with Twilio (SMS) and Brevo (email), completed into a live event.
    async fn live_event(&self) {
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
                let mut put = fixture(&format!("config-api/{t}"));
                put["pathParameters"]["category"] = json!(category);
                put["pathParameters"]["channel"] = json!(channel);
                self.ok(put).await;
            }
        }
        self.ok(fixture("wizard-completion/complete-wizard")).await;
    }

    async fn dispatch_all(&self, reply: &Value) -> Vec<MessageId> {
        let dispatcher = Dispatcher::from_app(&self.app, DispatchConfig::default());
        let mut ids = Vec::new();
        for m in reply["messages"].as_array().expect("messages") {
            let id = MessageId::parse(m["id"].as_str().expect("id")).expect("message id");
            assert_eq!(dispatcher.dispatch(&id, 1).await, Disposition::Done);
            ids.push(id);
        }
        ids
    }

    /// Tells Herald what a provider reported, as the delivery-webhooks function does after
    /// authenticating the provider's request.
    async fn notify(&self, kind: ProviderKind, notification: Notification) {
        let tenant = TenantId::parse("acme-events").expect("tenant");
        let provider = self
            .app
            .providers
            .tenant_providers(&tenant)
            .await
            .expect("providers")
            .into_iter()
            .find(|p| p.kind() == kind)
            .expect("a provider of that kind");
        herald_shared::receipts::apply(
            &self.app,
            herald_shared::receipts::Source {
                tenant: &tenant,
                provider: &provider,
                credentials: None,
            },
            vec![notification],
            "rcpt-1",
        )
        .await
        .expect("applied");
    }

    /// Sends, failures, a bounce, an opt-out and configuration changes in `acme-events`, and
    /// a little of another tenant; returns the period around them.
    async fn eventful_month(&self) -> (String, String) {
        let from = OffsetDateTime::now_utc() - time::Duration::hours(1);
        self.live_event().await;
        self.ok(fixture("config-api/put-tenant-settings")).await;
        // An SMS that is sent, one the provider refuses for good, two emails.
        let sms = self.ok(fixture("send-api/send-message")).await;
        self.dispatch_all(&sms).await;
        let mut refused = fixture("send-api/send-message");
        refused["headers"]["idempotency-key"] = json!("invite-bad-number");
        let refused = with_body(
            refused,
            json!({"category": "invitation", "channel": "sms", "to": INVALID_NUMBER,
                "variables": {"guest_name": "Bo", "event_date": "12 Dec"}}),
        );
        let refused = self.ok(refused).await;
        self.dispatch_all(&refused).await;
        let emails = self.ok(fixture("send-api/send-batch")).await;
        let email_ids = self.dispatch_all(&emails).await;
        // Grace's mailbox does not exist; Ada replies STOP to the SMS.
        let mut bounce = Receipt::new(
            ProviderKind::Brevo,
            format!("pm-{}", email_ids[1]),
            herald_shared::domain::message::MessageStatus::Bounced,
        );
        bounce.reason = Some("hard_bounce".into());
        bounce.hard = true;
        self.notify(ProviderKind::Brevo, Notification::Receipt(bounce))
            .await;
        self.notify(
            ProviderKind::Twilio,
            Notification::Inbound(InboundMessage {
                provider: ProviderKind::Twilio,
                from: "+260971234567".into(),
                to: Some("+260211555010".into()),
                text: "STOP".into(),
                channel: herald_shared::domain::Channel::Sms,
            }),
        )
        .await;
        // Another tenant changes its own configuration.
        for route in [
            "config-api/put-tenant-brand",
            "config-api/put-tenant-settings",
        ] {
            let other = with_claim(fixture(route), "herald:tenant", "globex");
            self.ok(with_claim(other, "sub", "user-globex")).await;
        }
        let to = OffsetDateTime::now_utc() + time::Duration::hours(1);
        (rfc3339(from), rfc3339(to))
    }
}

fn counts(report: &Value, section: &str, keys: &[&str]) -> Vec<(Vec<String>, u64)> {
    let mut rows: Vec<(Vec<String>, u64)> = report[section]
        .as_array()
        .unwrap_or_else(|| panic!("{section} in {report}"))
        .iter()
        .map(|row| {
            (
                keys.iter()
                    .map(|k| row[*k].as_str().unwrap_or_default().to_owned())
                    .collect(),
                row["count"].as_u64().expect("count"),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn row(values: &[&str], count: u64) -> (Vec<String>, u64) {
    (values.iter().map(|v| (*v).to_owned()).collect(), count)
}

#[tokio::test]
async fn the_json_report_counts_the_periods_messages_failures_blocks_and_changes() {
    let h = Harness::new();
    let (from, to) = h.eventful_month().await;
    let report = h
        .ok(with_query(
            fixture("config-api/get-compliance-report"),
            &[("from", &from), ("to", &to), ("format", "json")],
        ))
        .await;
    assert_eq!(report["tenant"], "acme-events");
    assert_eq!(
        counts(&report, "messages", &["channel", "status"]),
        vec![
            row(&["email", "bounced"], 1),
            row(&["email", "sent"], 1),
            row(&["sms", "failed"], 1),
            row(&["sms", "sent"], 1),
        ],
        "{report}"
    );
    assert_eq!(
        counts(&report, "failures", &["channel", "status", "reason"]),
        vec![
            row(&["email", "bounced", "hard_bounce"], 1),
            row(&["sms", "failed", "21211: invalid 'To' phone number"], 1),
        ]
    );
    assert_eq!(
        counts(&report, "recipients", &["channel", "action", "reason"]),
        vec![
            row(&["email", "suppressed", "hard_bounce"], 1),
            row(&["sms", "opted_out", "opt_out_keyword"], 1),
        ]
    );
    let totals = &report["totals"];
    assert_eq!(
        (
            totals["messages"].as_u64(),
            totals["failures"].as_u64(),
            totals["opted_out"].as_u64(),
            totals["suppressed"].as_u64()
        ),
        (Some(4), Some(2), Some(1), Some(1))
    );
    let priced: u64 = totals["cost"]
        .as_array()
        .expect("cost")
        .iter()
        .map(|c| c["messages"].as_u64().unwrap_or_default())
        .sum();
    assert_eq!(
        priced + totals["messages_without_cost"].as_u64().unwrap_or_default(),
        4
    );

    // Every change a person made in this tenant, and nothing of Herald's or another tenant's.
    let changes = report["configuration_changes"].as_array().expect("changes");
    let expected = h
        .store
        .audit_entries()
        .into_iter()
        .filter(|e| e.scope == "acme-events" && EntryClass::of(e) == EntryClass::Configuration)
        .count();
    assert_eq!(changes.len(), expected);
    assert!(changes.len() >= 10, "{changes:?}");
    // The fixtures' tenant admin and event manager.
    assert!(
        changes
            .iter()
            .all(|c| c["actor"] == "user-ada" || c["actor"] == "user-grace"),
        "{changes:?}"
    );
    let settings = changes
        .iter()
        .find(|c| c["action"] == "tenant.settings_updated")
        .expect("the retention change");
    assert_eq!(
        (&settings["target"], &settings["actor_role"]),
        (&json!("tenant/settings"), &json!("tenant_admin"))
    );
    assert!(changes.iter().any(|c| c["action"] == "event.created"));
    assert_eq!(
        totals["configuration_changes"].as_u64(),
        Some(expected as u64)
    );

    // An event manager may read it too; a period without anything has only zeros.
    let manager = with_claim(
        with_query(
            fixture("config-api/get-compliance-report"),
            &[("from", &from), ("to", &to)],
        ),
        "herald:role",
        "event_manager",
    );
    assert_eq!(h.ok(manager).await["totals"], report["totals"]);
    let empty = h
        .ok(with_query(
            fixture("config-api/get-compliance-report"),
            &[
                ("from", "2026-01-01T00:00:00Z"),
                ("to", "2026-02-01T00:00:00Z"),
            ],
        ))
        .await;
    assert_eq!(empty["totals"]["messages"], 0);
    assert_eq!(empty["configuration_changes"], json!([]));
}

#[tokio::test]
async fn the_csv_report_has_the_documented_columns_and_the_same_counts() {
    let h = Harness::new();
    let (from, to) = h.eventful_month().await;
    let query = [("from", from.as_str()), ("to", to.as_str())];
    let json_report = h
        .ok(with_query(
            fixture("config-api/get-compliance-report"),
            &query,
        ))
        .await;
    let reply = h
        .call(with_query(
            fixture("config-api/get-compliance-report-csv"),
            &[query[0], query[1], ("format", "csv")],
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.headers.get("content-type").map(String::as_str),
        Some("text/csv; charset=utf-8")
    );
    assert!(
        reply
            .headers
            .get("content-disposition")
            .is_some_and(|d| d.starts_with("attachment; filename=\"compliance-acme-events-")),
        "{:?}",
        reply.headers
    );
    let mut reader = csv::Reader::from_reader(reply.text.as_bytes());
    assert_eq!(
        reader.headers().expect("header").iter().collect::<Vec<_>>(),
        CSV_COLUMNS
    );
    let rows: Vec<HashMap<String, String>> = reader
        .deserialize()
        .collect::<Result<_, _>>()
        .expect("every row parses");
    let section = |name: &'static str| rows.iter().filter(move |r| r["section"] == name);
    let mut messages: Vec<(Vec<String>, u64)> = section("messages")
        .map(|r| {
            (
                vec![r["channel"].clone(), r["status"].clone()],
                r["count"].parse().expect("count"),
            )
        })
        .collect();
    messages.sort();
    assert_eq!(
        messages,
        counts(&json_report, "messages", &["channel", "status"])
    );
    let failure = section("failures")
        .find(|r| r["channel"] == "sms")
        .expect("the SMS failure");
    assert_eq!(failure["reason"], "21211: invalid 'To' phone number");
    assert_eq!(
        section("configuration_changes").count(),
        json_report["configuration_changes"]
            .as_array()
            .map_or(0, Vec::len)
    );
    assert!(
        section("configuration_changes").all(|r| r["actor"].starts_with("user-")
            && r["actor"] != "user-globex"
            && !r["at"].is_empty()
            && !r["request_id"].is_empty())
    );
    let total = |metric: &str| {
        section("totals")
            .find(|r| r["metric"] == metric)
            .map(|r| r["count"].clone())
    };
    assert_eq!(total("messages").as_deref(), Some("4"));
    assert_eq!(total("opted_out").as_deref(), Some("1"));
    assert_eq!(total("suppressed").as_deref(), Some("1"));
    assert!(rows.iter().all(|r| r["tenant"] == "acme-events"));
}

#[tokio::test]
async fn bad_periods_and_formats_are_refused_naming_the_field() {
    let h = Harness::new();
    for (query, code, field) in [
        (
            vec![("to", "2026-12-01T00:00:00Z")],
            "required",
            "query.from",
        ),
        (
            vec![("from", "2026-11-01"), ("to", "2026-12-01T00:00:00Z")],
            "invalid",
            "query.from",
        ),
        (
            vec![("from", "2026-11-01T00:00:00Z")],
            "required",
            "query.to",
        ),
        (
            vec![
                ("from", "2026-12-01T00:00:00Z"),
                ("to", "2026-11-01T00:00:00Z"),
            ],
            "invalid_period",
            "query.to",
        ),
        (
            vec![
                ("from", "2025-01-01T00:00:00Z"),
                ("to", "2026-12-01T00:00:00Z"),
            ],
            "period_too_long",
            "query.to",
        ),
        (
            vec![
                ("from", "2026-11-01T00:00:00Z"),
                ("to", "2026-12-01T00:00:00Z"),
                ("format", "xlsx"),
            ],
            "invalid",
            "query.format",
        ),
    ] {
        let reply = h
            .call(with_query(
                fixture("config-api/get-compliance-report"),
                &query,
            ))
            .await;
        assert_eq!(
            (
                reply.status,
                reply.body["error"]["code"].as_str(),
                reply.body["error"]["field"].as_str()
            ),
            (400, Some(code), Some(field)),
            "{query:?}: {}",
            reply.text
        );
    }
    // An offset with its `+` encoded is a valid time.
    h.ok(with_query(
        fixture("config-api/get-compliance-report"),
        &[
            ("from", "2026-11-01T02:00:00+02:00"),
            ("to", "2026-12-01T00:00:00Z"),
        ],
    ))
    .await;
}

#[tokio::test]
async fn tenants_see_only_their_own_report_and_platform_admins_name_the_tenant() {
    let h = Harness::new();
    let (from, to) = h.eventful_month().await;
    let query = [("from", from.as_str()), ("to", to.as_str())];
    let acme = h
        .ok(with_query(
            fixture("config-api/get-compliance-report"),
            &query,
        ))
        .await;

    // globex's own report: its two changes, none of acme's messages.
    let globex = h
        .ok(with_claim(
            with_claim(
                with_query(fixture("config-api/get-compliance-report"), &query),
                "herald:tenant",
                "globex",
            ),
            "sub",
            "user-globex",
        ))
        .await;
    assert_eq!(globex["tenant"], "globex");
    assert_eq!(globex["totals"]["messages"], 0);
    assert_eq!(globex["recipients"], json!([]));
    let actions: Vec<&str> = globex["configuration_changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(actions, ["brand.updated", "tenant.settings_updated"]);
    assert!(
        globex["configuration_changes"]
            .as_array()
            .expect("changes")
            .iter()
            .all(|c| c["actor"] == "user-globex")
    );

    // Naming another tenant is not found; only platform admins name one.
    let mut other = query.to_vec();
    other.push(("tenant", "globex"));
    let reply = h
        .call(with_query(
            fixture("config-api/get-compliance-report"),
            &other,
        ))
        .await;
    assert_eq!(reply.status, 404, "{}", reply.text);
    let mut own = query.to_vec();
    own.push(("tenant", "acme-events"));
    assert_eq!(
        h.ok(with_query(
            fixture("config-api/get-compliance-report"),
            &own
        ))
        .await["totals"],
        acme["totals"]
    );
    let mut as_admin = query.to_vec();
    as_admin.push(("tenant", "acme-events"));
    let admin = h
        .ok(with_query(
            fixture("config-api/get-compliance-report-as-platform-admin"),
            &as_admin,
        ))
        .await;
    assert_eq!(admin["totals"], acme["totals"]);
    let reply = h
        .call(with_query(
            fixture("config-api/get-compliance-report-as-platform-admin"),
            &query,
        ))
        .await;
    assert_eq!(
        (reply.status, reply.body["error"]["field"].as_str()),
        (400, Some("query.tenant"))
    );
}

#[tokio::test]
async fn tenant_retention_is_validated_audited_and_given_to_new_messages() {
    let h = Harness::new();
    let before = h.ok(fixture("config-api/get-tenant-settings")).await;
    assert_eq!(
        before,
        json!({"message_retention_days": 90, "templates_need_approval": false, "source": "platform"})
    );
    for (body, field) in [
        (
            json!({"message_retention_days": 0}),
            "message_retention_days",
        ),
        (
            json!({"message_retention_days": 3651}),
            "message_retention_days",
        ),
        (
            json!({"message_retention_days": 30, "audit_days": 1}),
            "audit_days",
        ),
    ] {
        let reply = h
            .call(with_body(fixture("config-api/put-tenant-settings"), body))
            .await;
        assert_eq!(
            (reply.status, reply.body["error"]["field"].as_str()),
            (400, Some(field)),
            "{}",
            reply.text
        );
    }
    let manager = with_claim(
        fixture("config-api/put-tenant-settings"),
        "herald:role",
        "event_manager",
    );
    assert_eq!(h.call(manager).await.status, 403);
    assert!(
        h.store
            .audit_entries()
            .iter()
            .all(|e| e.action != "tenant.settings_updated"),
        "refusals write nothing"
    );

    h.live_event().await;
    let put = h.ok(fixture("config-api/put-tenant-settings")).await;
    assert_eq!(
        put,
        json!({"message_retention_days": 30, "templates_need_approval": false, "source": "tenant"})
    );
    assert_eq!(h.ok(fixture("config-api/get-tenant-settings")).await, put);
    let audit = h
        .store
        .audit_entries()
        .into_iter()
        .find(|e| e.action == "tenant.settings_updated")
        .expect("audited");
    assert_eq!(
        (audit.actor.as_str(), audit.target.as_str()),
        ("user-ada", "tenant/settings")
    );

    let sent = h.ok(fixture("send-api/send-message")).await;
    let id = h.dispatch_all(&sent).await.remove(0);
    let message = h
        .app
        .messages
        .message(&id)
        .await
        .expect("store")
        .expect("message")
        .message;
    assert_eq!(
        message.expires_at,
        Some(message.created_at + time::Duration::days(30)),
        "the tenant's 30 days, kept through dispatch"
    );
    // Another tenant without a setting keeps the platform default.
    let other = with_claim(
        fixture("config-api/get-tenant-settings"),
        "herald:tenant",
        "globex",
    );
    assert_eq!(h.ok(other).await["source"], "platform");
}
