//! The main job, end to end, over Herald's HTTP API at the local gateway (in front of the
//! functions under `cargo lambda watch`), each caller with their own token: platform compliance
//! templates, a tenant's defaults, an event that overrides some of them, wizard completion (first
//! refused, then accepted), the resolved configuration with provenance, an idempotent repeat, a
//! second version, rollback, and the isolation rules.

use std::path::PathBuf;

use anyhow::{Context as _, bail, ensure};
use serde_json::{Value, json};

use crate::api::{Answer, Api, Identity};

#[derive(Debug)]
pub struct Setup {
    /// The JSON line the local gateway printed (base URL, issuer, audience).
    pub gateway_state: PathBuf,
    /// The `herald` CLI, whose `dev-token` mints each caller's token.
    pub herald_cli: PathBuf,
    pub invoke_url: String,
    pub standins_url: String,
    pub smtp_port: u16,
    pub smtp_user: String,
    pub smtp_password: String,
    pub smtp_spool: PathBuf,
}

const TENANT: &str = "acme-events";
const EVENT: &str = "gala-2026";
const TWILIO_SID: &str = "AC5f1c2b7e9d0a4c3b8e6f7a1d2c3b4a59";
const TWILIO_TOKEN: &str = "tw-auth-token-0000-demo-4d2f";
const AT_USER: &str = "acme_gala";
const AT_KEY: &str = "atsk_demo_0000000000000000a1b2";
const BREVO_KEY: &str = "xkeysib-demo-0000000000000000beef";

const PLATFORM: Identity = Identity {
    subject: "ops-lin",
    role: "platform_admin",
    tenant: None,
};
/// A second platform admin: platform templates are published by four eyes.
const REVIEWER: Identity = Identity {
    subject: "ops-bo",
    role: "platform_admin",
    tenant: None,
};
const ADMIN: Identity = Identity {
    subject: "user-ada",
    role: "tenant_admin",
    tenant: Some(TENANT),
};
const MANAGER: Identity = Identity {
    subject: "user-grace",
    role: "event_manager",
    tenant: Some(TENANT),
};
/// A tenant system calling the send API (a machine identity with the tenant admin role).
const SENDER: Identity = Identity {
    subject: "svc-ticketing",
    role: "tenant_admin",
    tenant: Some(TENANT),
};
const OUTSIDER: Identity = Identity {
    subject: "user-mallory",
    role: "tenant_admin",
    tenant: Some("globex"),
};

fn step(title: &str) {
    println!("\n== {title}");
}

fn show(what: &str, answer: &Answer, note: &str) {
    let replay = if answer.replayed {
        " (idempotent replay)"
    } else {
        ""
    };
    println!("   {what:<58} -> {}{replay}  {note}", answer.status);
}

/// Four eyes on a platform template: its author may not approve it; a second admin does, which
/// publishes it.
async fn approve(f: &Api, path: &str, submitted: &Answer) -> anyhow::Result<()> {
    let version = submitted.body["version"].as_u64().unwrap_or_default();
    let review = format!("{path}/versions/{version}/approve");
    let refused = f.post(&PLATFORM, &review).expect(403).await?;
    show(
        &format!("POST .../versions/{version}/approve"),
        &refused,
        "by its author: four_eyes",
    );
    let approved = f.post(&REVIEWER, &review).expect(200).await?;
    show(
        &format!("POST .../versions/{version}/approve"),
        &approved,
        "by a second platform admin: published",
    );
    Ok(())
}

pub async fn run(setup: Setup) -> anyhow::Result<()> {
    let f = Api::sign_in(
        &setup.gateway_state,
        &setup.herald_cli,
        &[&PLATFORM, &REVIEWER, &ADMIN, &MANAGER, &SENDER, &OUTSIDER],
    )?;
    let http = reqwest::Client::new();
    // The stand-ins accept exactly the accounts the tenant is about to configure.
    http.post(format!("{}/_standin/accounts", setup.standins_url))
        .json(&json!({
            "twilio": [{"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN}],
            "africastalking": [{"username": AT_USER, "api_key": AT_KEY}],
            "brevo": [{"api_key": BREVO_KEY}],
        }))
        .send()
        .await
        .context("registering stand-in accounts")?
        .error_for_status()?;

    println!("Herald local run: tenant {TENANT}, event {EVENT}");
    println!(
        "   API: the local gateway at {} (JWT authorizer; each caller with a token from herald dev-token)",
        f.base_url()
    );
    println!("   functions: cargo lambda watch at {}", setup.invoke_url);
    println!(
        "   providers: stand-ins at {} and an SMTP server on 127.0.0.1:{}",
        setup.standins_url, setup.smtp_port
    );

    step("1. The platform publishes compliance templates (global layer)");
    for (category, channel, body) in [
        (
            "rsvp_confirmation",
            "sms",
            "{{ brand.display_name }}: your RSVP is confirmed, {{ guest_name }}. Reply STOP to opt out.",
        ),
        (
            "event_reminder",
            "sms",
            "{{ brand.display_name }} reminder: {{ event_date }}. Reply STOP to opt out.",
        ),
    ] {
        let vars = if body.contains("guest_name") {
            json!([{"name": "guest_name", "sample": "Ada"}])
        } else {
            json!([{"name": "event_date", "sample": "12 Dec"}])
        };
        let path = format!("/platform/templates/{category}/{channel}");
        let a = f
            .put(&PLATFORM, &path)
            .json(json!({"body": body, "variables": vars}))
            .expect(202)
            .await?;
        show(
            &format!("PUT {path}"),
            &a,
            "platform admin: submitted for review",
        );
        approve(&f, &path, &a).await?;
    }
    for (category, subject) in [
        ("rsvp_confirmation", "RSVP confirmed"),
        ("event_reminder", "Reminder: {{ event_date }}"),
    ] {
        let body = "<p>{{ brand.display_name }}</p><p>See you on {{ event_date }}.</p><p><small>Unsubscribe at any time.</small></p>";
        let path = format!("/platform/templates/{category}/email");
        let a = f
            .put(&PLATFORM, &path)
            .json(json!({"subject": subject, "body": body, "variables": [{"name": "event_date", "sample": "12 December 2026"}]}))
            .expect(202)
            .await?;
        show(
            &format!("PUT {path}"),
            &a,
            "platform admin: submitted for review",
        );
        approve(&f, &path, &a).await?;
    }

    step("2. The tenant sets its defaults: brand, providers (credentials write-only), templates");
    let a = f
        .put(&ADMIN, "/tenant/brand")
        .json(
            json!({"display_name": "Acme Events", "logo_url": "https://cdn.acme.example/logo.png",
            "primary_color": "#0a3d62", "support_email": "help@acme.example",
            "legal_name": "Acme Events Ltd", "postal_address": "Plot 12, Cairo Road, Lusaka, Zambia"}),
        )
        .expect(200)
        .await?;
    show(
        "PUT /tenant/brand",
        &a,
        "display_name \"Acme Events\", colours, logo, legal name and postal address",
    );
    let twilio_provider = json!({
        "channel": "sms", "name": "Twilio (primary SMS)",
        "settings": {"kind": "twilio", "account_sid": TWILIO_SID, "from": "+260211555010"},
        "credentials": {"auth_token": TWILIO_TOKEN}, "priority": 1, "weight": 100, "active": true});
    let twilio = f
        .post(&ADMIN, "/tenant/providers")
        .json(twilio_provider.clone())
        .expect(201)
        .await?;
    show(
        "POST /tenant/providers  (Twilio SMS, priority 1)",
        &twilio,
        &format!("credentials shown as {}", twilio.body["credentials"]),
    );
    let twilio_id = twilio.body["id"].as_str().context("id")?.to_owned();
    let brevo = f.post(&ADMIN, "/tenant/providers").json(json!({
        "channel": "email", "name": "Brevo (primary email)", "settings": {"kind": "brevo", "from_address": "events@acme.example", "from_name": "Acme Events"},
        "credentials": {"api_key": BREVO_KEY}, "priority": 1})).expect(201).await?;
    show(
        "POST /tenant/providers  (Brevo email, priority 1)",
        &brevo,
        "",
    );
    let smtp = f.post(&ADMIN, "/tenant/providers").json(json!({
        "channel": "email", "name": "Legacy SMTP (fallback)", "settings": {"kind": "smtp", "host": "127.0.0.1", "port": setup.smtp_port,
        "security": "none", "username": setup.smtp_user, "from_address": "events@acme.example"},
        "credentials": {"password": setup.smtp_password}, "priority": 2})).expect(201).await?;
    show(
        "POST /tenant/providers  (SMTP email, priority 2)",
        &smtp,
        "",
    );
    let test = f
        .post(&ADMIN, &format!("/tenant/providers/{twilio_id}/test"))
        .expect(200)
        .await?;
    show(
        "POST /tenant/providers/{id}/test  (Twilio)",
        &test,
        &format!("live check: {}", test.body["outcome"]),
    );
    for (channel, template) in [
        (
            "email",
            json!({"subject": "You're invited, {{ guest_name }}",
                "body": "<h1>{{ brand.display_name }}</h1><p>Dear {{ guest_name }}, join us on {{ event_date }}.</p>",
                "variables": [{"name": "guest_name", "sample": "Ada Lovelace"}, {"name": "event_date", "sample": "12 December 2026"}]}),
        ),
        (
            "sms",
            json!({"body": "{{ brand.display_name }}: Hi {{ guest_name }}, you're invited on {{ event_date }}. Reply STOP to opt out.",
                "variables": [{"name": "guest_name", "sample": "Ada"}, {"name": "event_date", "sample": "12 Dec"}]}),
        ),
    ] {
        let a = f
            .put(&ADMIN, &format!("/tenant/templates/invitation/{channel}"))
            .json(template)
            .expect(201)
            .await?;
        show(
            &format!("PUT /tenant/templates/invitation/{channel}"),
            &a,
            "",
        );
    }
    let denied = f
        .post(&MANAGER, "/tenant/providers")
        .json(twilio_provider)
        .expect(403)
        .await?;
    show(
        "POST /tenant/providers as event_manager",
        &denied,
        "roles enforced: tenant defaults are the admin's",
    );

    step("3. The event manager customises the event");
    let a = f.put(&MANAGER, &format!("/events/{EVENT}/settings")).json(json!({
        "channels": ["email", "sms"], "categories": ["invitation", "rsvp_confirmation", "event_reminder", "check_in"]})).expect(201).await?;
    show(
        "PUT /events/gala-2026/settings",
        &a,
        "email + sms; invitation, rsvp_confirmation, event_reminder, check_in",
    );
    let at = f
        .post(&MANAGER, &format!("/events/{EVENT}/providers"))
        .json(
            json!({"channel": "sms", "name": "Africa's Talking (event SMS)",
            "settings": {"kind": "africas_talking", "username": AT_USER, "sender_id": "ACMEGALA"},
            "credentials": {"api_key": AT_KEY}, "priority": 1, "weight": 100}),
        )
        .expect(201)
        .await?;
    show(
        "POST /events/gala-2026/providers  (Africa's Talking, own)",
        &at,
        "customize for event",
    );
    let a = f
        .put(&MANAGER, &format!("/events/{EVENT}/providers/{twilio_id}"))
        .json(json!({"priority": 2, "active": true}))
        .expect(200)
        .await?;
    show(
        "PUT /events/gala-2026/providers/{twilio}  {priority: 2}",
        &a,
        "tenant Twilio becomes the fallback",
    );
    let a = f
        .put(&MANAGER, &format!("/events/{EVENT}/templates/invitation/sms"))
        .json(json!({"body": "Hi {{ guest_name }}! The Winter Gala awaits you on {{ event_date }}. Reply STOP to opt out.",
            "variables": [{"name": "guest_name", "sample": "Ada"}, {"name": "event_date", "sample": "12 Dec"}]}))
        .expect(201)
        .await?;
    show(
        "PUT /events/gala-2026/templates/invitation/sms",
        &a,
        "overrides the tenant's",
    );
    let a = f
        .put(&MANAGER, &format!("/events/{EVENT}/brand"))
        .json(json!({"display_name": "Acme Winter Gala 2026", "primary_color": "#8e44ad"}))
        .expect(200)
        .await?;
    show(
        "PUT /events/gala-2026/brand",
        &a,
        "display_name and primary colour for the gala",
    );

    step("4. Wizard completion: validated as a whole, nothing activated when invalid");
    let a = f
        .post(&MANAGER, &format!("/events/{EVENT}/wizard/complete"))
        .json(json!({}))
        .idempotency_key("gala-complete-1")
        .expect(422)
        .await?;
    show(
        "POST /events/gala-2026/wizard/complete",
        &a,
        a.body["error"]["message"].as_str().unwrap_or_default(),
    );
    for p in a.body["error"]["problems"].as_array().into_iter().flatten() {
        println!(
            "      - {:<22} {:<36} {}",
            p["code"].as_str().unwrap_or_default(),
            p["field"].as_str().unwrap_or_default(),
            p["message"].as_str().unwrap_or_default()
        );
    }
    let a = f.put(&MANAGER, &format!("/events/{EVENT}/settings")).json(json!({
        "channels": ["email", "sms"], "categories": ["invitation", "rsvp_confirmation", "event_reminder"],
        "triggers": {"guest.rsvp_confirmed": {"category": "rsvp_confirmation", "channels": ["email", "sms"]}}})).expect(200).await?;
    show(
        "PUT /events/gala-2026/settings  (check-in messages dropped)",
        &a,
        "",
    );
    let first = f
        .post(&MANAGER, &format!("/events/{EVENT}/wizard/complete"))
        .json(json!({}))
        .idempotency_key("gala-complete-1")
        .expect(201)
        .await?;
    show(
        "POST /events/gala-2026/wizard/complete",
        &first,
        &format!("snapshot version {} active", first.body["version"]),
    );
    for check in first.body["provider_checks"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!(
            "      live check {:<32} {}",
            check["provider"].as_str().unwrap_or_default(),
            check["outcome"].as_str().unwrap_or_default()
        );
    }
    let again = f
        .post(&MANAGER, &format!("/events/{EVENT}/wizard/complete"))
        .json(json!({}))
        .idempotency_key("gala-complete-1")
        .expect(201)
        .await?;
    ensure!(
        again.replayed && again.body == first.body,
        "the repeat must return the first result"
    );
    show(
        "POST /events/gala-2026/wizard/complete  (same Idempotency-Key)",
        &again,
        "same version, nothing new written",
    );

    step("5. The resolved configuration, with where every value comes from");
    let cfg = f
        .get(&MANAGER, &format!("/events/{EVENT}/configuration"))
        .expect(200)
        .await?;
    show("GET /events/gala-2026/configuration", &cfg, "");
    print_configuration(&cfg.body);

    step(
        "6. Sending through the active snapshot: send API -> SNS -> channel queues -> dispatch -> providers",
    );
    send_messages(&f, &http, &setup, &cfg.body).await?;

    step("7. Operations change: a second version, then rollback to the first");
    let a = f
        .put(&MANAGER, &format!("/events/{EVENT}/brand"))
        .json(json!({"display_name": "Acme Winter Gala 2026", "primary_color": "#c0392b"}))
        .expect(200)
        .await?;
    show("PUT /events/gala-2026/brand  (new colour)", &a, "");
    let second = f
        .post(&MANAGER, &format!("/events/{EVENT}/wizard/complete"))
        .json(json!({}))
        .idempotency_key("gala-complete-2")
        .expect(201)
        .await?;
    show(
        "POST /events/gala-2026/wizard/complete",
        &second,
        &format!(
            "version {} active (was {})",
            second.body["version"], second.body["previous_version"]
        ),
    );
    let rolled = f
        .post(&ADMIN, &format!("/events/{EVENT}/snapshots/1/activate"))
        .expect(200)
        .await?;
    show(
        "POST /events/gala-2026/snapshots/1/activate",
        &rolled,
        "rollback",
    );
    let list = f
        .get(&MANAGER, &format!("/events/{EVENT}/snapshots"))
        .expect(200)
        .await?;
    let items = list.body["items"].as_array().cloned().unwrap_or_default();
    let active = items
        .iter()
        .find(|s| s["active"] == true)
        .map_or(Value::Null, |s| s["version"].clone());
    show(
        "GET /events/gala-2026/snapshots",
        &list,
        &format!("active version {active}"),
    );
    for s in &items {
        println!(
            "      version {} by {} sha256:{}…",
            s["version"],
            s["created_by"].as_str().unwrap_or_default(),
            &s["digest"].as_str().unwrap_or_default()[..12]
        );
    }

    step("8. Isolation: another tenant sees nothing");
    let a = f
        .get(&OUTSIDER, &format!("/events/{EVENT}/configuration"))
        .expect(404)
        .await?;
    show(
        "GET /events/gala-2026/configuration as tenant globex",
        &a,
        "404: the tenant comes from the token",
    );

    let requests: Value = http
        .get(format!("{}/_standin/requests", setup.standins_url))
        .send()
        .await?
        .json()
        .await?;
    let mut per_provider = std::collections::BTreeMap::<String, usize>::new();
    for r in requests
        .as_array()
        .or_else(|| requests["requests"].as_array())
        .into_iter()
        .flatten()
    {
        *per_provider
            .entry(r["provider"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    let spooled = std::fs::read_to_string(&setup.smtp_spool)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    println!(
        "\nRequests the provider stand-ins received (live checks and sends): {per_provider:?}; emails the SMTP server accepted: {spooled}."
    );
    if first.body["version"] != 1 || second.body["version"] != 2 {
        bail!("unexpected versions");
    }
    println!("Done: snapshot 1 active for {EVENT}; operations read only the active snapshot.");
    Ok(())
}

/// Sends a single SMS, a batch of emails and a business event, with one outage on each
/// channel's primary provider, then follows every message to its provider.
async fn send_messages(
    f: &Api,
    http: &reqwest::Client,
    setup: &Setup,
    cfg: &Value,
) -> anyhow::Result<()> {
    let names: std::collections::BTreeMap<String, String> = cfg["channels"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(_, c)| c["providers"].as_array().cloned().unwrap_or_default())
        .map(|p| {
            (
                p["id"].as_str().unwrap_or_default().to_owned(),
                p["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let mut ids = Vec::new();
    let invitation = json!({"category": "invitation", "channel": "sms", "to": "+260971234567",
        "variables": {"guest_name": "Ada", "event_date": "12 Dec"}});
    let single = f
        .post(&SENDER, &format!("/events/{EVENT}/messages"))
        .json(invitation.clone())
        .idempotency_key("invite-ada-2026-11-22")
        .expect(202)
        .await?;
    let m = &single.body["messages"][0];
    show(
        "POST /events/gala-2026/messages  (SMS invitation)",
        &single,
        &format!(
            "{} segment(s), estimated {}",
            m["segments"],
            money(&m["estimated_cost"])
        ),
    );
    ids.extend(message_ids(&single.body));

    // One outage on each channel's primary provider: the next message fails over.
    for provider in ["brevo", "africastalking"] {
        http.post(format!("{}/_standin/faults", setup.standins_url))
            .json(&json!({"provider": provider, "count": 1, "status": 503}))
            .send()
            .await?
            .error_for_status()?;
    }
    println!("   (stand-ins: the next Brevo and Africa's Talking requests answer 503)");
    let batch = f
        .post(&SENDER, &format!("/events/{EVENT}/messages/batch"))
        .json(json!({"category": "invitation", "channel": "email", "recipients": [
            {"to": "ada@guests.example", "variables": {"guest_name": "Ada Lovelace", "event_date": "12 December 2026"}},
            {"to": "grace@guests.example", "variables": {"guest_name": "Grace Hopper", "event_date": "12 December 2026"}}]}))
        .idempotency_key("invite-batch-2026-11-22-001")
        .expect(202)
        .await?;
    show(
        "POST /events/gala-2026/messages/batch  (2 email invitations)",
        &batch,
        "",
    );
    ids.extend(message_ids(&batch.body));
    let trigger = f
        .post(
            &SENDER,
            &format!("/events/{EVENT}/triggers/guest.rsvp_confirmed"),
        )
        .json(
            json!({"recipients": [{"email": "ada@guests.example", "phone": "+260971234567",
            "variables": {"guest_name": "Ada", "event_date": "12 Dec"}}]}),
        )
        .idempotency_key("rsvp-ada-0001")
        .expect(202)
        .await?;
    show(
        "POST /events/gala-2026/triggers/guest.rsvp_confirmed",
        &trigger,
        "business event -> rsvp_confirmation on email + sms",
    );
    ids.extend(message_ids(&trigger.body));
    let repeat = f
        .post(&SENDER, &format!("/events/{EVENT}/messages"))
        .json(invitation)
        .idempotency_key("invite-ada-2026-11-22")
        .expect(202)
        .await?;
    ensure!(repeat.replayed, "a repeated send must be a replay");
    show(
        "POST /events/gala-2026/messages  (same Idempotency-Key)",
        &repeat,
        "same message, no second SMS",
    );
    let bad = f
        .post(&SENDER, &format!("/events/{EVENT}/messages"))
        .json(json!({"category": "invitation", "channel": "sms",
            "to": "0971234567", "variables": {"guest_name": "Ada", "event_date": "12 Dec"}}))
        .idempotency_key("bad-number-1")
        .expect(400)
        .await?;
    show(
        "POST /events/gala-2026/messages  (number without country code)",
        &bad,
        &format!(
            "{} {}",
            bad.body["error"]["code"].as_str().unwrap_or_default(),
            bad.body["error"]["field"].as_str().unwrap_or_default()
        ),
    );

    println!(
        "   dispatch (sqs-event-source feeding the dispatch function under cargo lambda watch):"
    );
    let mut through_twilio = Vec::new();
    for id in ids {
        let mut last = Value::Null;
        for _ in 0..120 {
            let a = f
                .get(&SENDER, &format!("/events/{EVENT}/messages/{id}"))
                .send()
                .await?;
            last = a.body;
            if last["status"] != "accepted" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        let provider = last["provider"]
            .as_str()
            .and_then(|p| names.get(p))
            .cloned()
            .unwrap_or_else(|| "-".to_owned());
        let tries: Vec<String> = last["attempts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                format!(
                    "{}:{}",
                    a["kind"].as_str().unwrap_or_default(),
                    a["outcome"].as_str().unwrap_or_default()
                )
            })
            .collect();
        println!(
            "      {id} {:<6} {:<8} via {:<28} cost {:<14} attempts [{}]",
            last["channel"].as_str().unwrap_or_default(),
            last["status"].as_str().unwrap_or_default(),
            provider,
            money(&last["cost"]),
            tries.join(", ")
        );
        ensure!(
            last["status"] == "sent" || last["status"] == "delivered",
            "message {id} ended {}",
            last["status"]
        );
        if last["provider_kind"] == "twilio" {
            through_twilio.push(id.clone());
        }
    }
    if through_twilio.is_empty() {
        return Ok(());
    }
    println!(
        "   delivery receipts (Twilio calls the StatusCallback URL dispatch gave it, signed; the delivery-webhooks function verifies and applies):"
    );
    for id in through_twilio {
        let mut last = Value::Null;
        for _ in 0..40 {
            last = f
                .get(&SENDER, &format!("/events/{EVENT}/messages/{id}"))
                .send()
                .await?
                .body;
            if last["status"] == "delivered" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        println!(
            "      {id} {:<6} {:<9} billed {} (Twilio's price, asked when the message ended; estimated {})",
            last["channel"].as_str().unwrap_or_default(),
            last["status"].as_str().unwrap_or_default(),
            money(&last["cost"]),
            money(&last["estimated_cost"])
        );
        ensure!(
            last["status"] == "delivered",
            "no delivery receipt reached message {id} (status {})",
            last["status"]
        );
    }
    Ok(())
}

fn message_ids(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect()
}

fn money(v: &Value) -> String {
    match (v["amount_micros"].as_i64(), v["currency"].as_str()) {
        (Some(micros), Some(currency)) => format!("{currency} {:.4}", micros as f64 / 1e6),
        _ => "-".to_owned(),
    }
}

fn print_configuration(cfg: &Value) {
    let source = |v: &Value| -> String {
        match (v["source"].as_str(), v["overrides"].as_str()) {
            (Some("event"), Some(_)) => "overridden for event".to_owned(),
            (Some("event"), None) => "customized for event".to_owned(),
            (Some("tenant"), _) => "inherited from tenant".to_owned(),
            (Some("global"), _) => "platform compliance template".to_owned(),
            (Some(other), _) => other.to_owned(),
            _ => String::new(),
        }
    };
    for (channel, c) in cfg["channels"].as_object().into_iter().flatten() {
        println!("      {channel} providers (in dispatch order):");
        for p in c["providers"].as_array().into_iter().flatten() {
            println!(
                "        {:<30} priority {} ({}), provider {}",
                p["name"].as_str().unwrap_or_default(),
                p["priority"]["value"],
                source(&p["priority"]),
                if p["source"] == "event" {
                    "owned by the event"
                } else {
                    "inherited from tenant"
                },
            );
        }
    }
    println!("      templates:");
    for t in cfg["templates"].as_array().into_iter().flatten() {
        println!(
            "        {:<18} {:<6} v{}  {}",
            t["category"].as_str().unwrap_or_default(),
            t["channel"].as_str().unwrap_or_default(),
            t["version"],
            source(t)
        );
    }
    println!("      brand:");
    for (field, v) in cfg["brand"].as_object().into_iter().flatten() {
        println!(
            "        {field:<14} {:<36} {}",
            v["value"].as_str().unwrap_or_default(),
            source(v)
        );
    }
}
