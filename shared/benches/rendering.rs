//! Rendering for sending, beside minijinja alone on the same sources: an SMS template (about 140
//! characters, 3 variables) with its segment count, a branded HTML email (a 3 KB body, 5
//! variables) and the same email with a 20-item agenda (a list of objects, a loop, the `time`
//! filter) into their HTML documents and plain-text alternatives, compiled once as the send
//! path's cache keeps them; compile + render as previews do; and the wizard's preview of that email as a draft, through the whole
//! preview handler (request parsing, compiling, rendering with the tenant's brand, the answer).
//! `cargo bench -p herald-shared --bench rendering`

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use herald_shared::domain::template::{TemplateContent, VariableDecl};
use herald_shared::domain::{Category, Channel};
use herald_shared::rendering::{
    Audience, Compliance, Renderer, Template, TemplateCache, TemplateKey,
};

fn content(subject: Option<&str>, body: String, variables: &[(&str, &str)]) -> TemplateContent {
    TemplateContent {
        subject: subject.map(str::to_owned),
        body,
        variables: variables
            .iter()
            .map(|(name, sample)| VariableDecl::text(name, sample))
            .collect(),
        brand_assets: BTreeMap::new(),
        design_settings: BTreeMap::from([
            ("layout".into(), "centered".into()),
            ("button_color".into(), "#e58e26".into()),
        ]),
        whatsapp: None,
    }
}

fn sms() -> TemplateContent {
    content(
        None,
        "{{ brand.display_name }}: Hi {{ guest_name }}, your seat for {{ event_name }} is confirmed. \
         Doors open at {{ doors_open }}, please bring your ID. Reply STOP to opt out."
            .into(),
        &[
            ("guest_name", "Mwila Banda"),
            ("event_name", "Lusaka Fintech Summit"),
            ("doors_open", "08:30"),
        ],
    )
}

fn email() -> TemplateContent {
    let body = r#"<h1>You're invited to {{ event_name }}</h1>
<p>Dear {{ guest_name }},</p>
<p>We are delighted to invite you to <strong>{{ event_name }}</strong>, our annual evening of music,
dinner and conversation in support of the community library programme. This year we return to
{{ venue }}, where the ballroom has been restored to its original splendour.</p>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="margin:16px 0;">
  <tr><td style="padding:4px 0;width:30%;"><strong>Date</strong></td><td>{{ event_date }}</td></tr>
  <tr><td style="padding:4px 0;"><strong>Venue</strong></td><td>{{ venue }}</td></tr>
  <tr><td style="padding:4px 0;"><strong>Dress code</strong></td><td>Black tie optional</td></tr>
</table>
<h2>The evening</h2>
<ul>
  <li>18:30 &ndash; Welcome drinks on the terrace</li>
  <li>19:30 &ndash; Dinner, with a menu by our guest chef</li>
  <li>21:00 &ndash; Live music and the charity auction</li>
  <li>23:00 &ndash; Carriages</li>
</ul>
<p>Please let us know whether you can join us by {{ rsvp_by }}. If you are bringing a guest, add
their name when you reply so we can prepare a place card and seat you together.</p>
<p style="text-align:center;margin:24px 0;"><a class="button" href="https://events.acme.example/gala/rsvp?ref=email">Reply to the invitation</a></p>
<p>Parking is available beneath the venue from 18:00, and the venue is a short walk from the
central station. If you need step-free access or have dietary requirements, tell us in your reply
and we will make the arrangements.</p>
<h2>Good to know</h2>
<ol>
  <li>Your invitation is personal; your e-ticket will follow once you have replied.</li>
  <li>The auction catalogue will be online two weeks before the evening.</li>
  <li>Photographs will be taken during the evening; let us know if you would prefer not to appear.</li>
</ol>
<p>We very much hope to see you there.</p>
<p>Warm regards,<br>The {{ event_name }} team</p>
<p style="font-size:12px;color:#6b7280;">You are receiving this because you attended a previous
event. <a href="https://events.acme.example/preferences">Manage your preferences</a> or
<a href="https://events.acme.example/unsubscribe">unsubscribe</a>.</p>"#;
    content(
        Some("You're invited: {{ event_name }} on {{ event_date }}"),
        body.into(),
        &[
            ("guest_name", "Ada Lovelace"),
            ("event_name", "Acme Winter Gala"),
            ("event_date", "Saturday 12 December 2026"),
            ("venue", "The Grand Hall, Cairo Road"),
            ("rsvp_by", "28 November"),
        ],
    )
}

fn brand() -> BTreeMap<&'static str, &'static str> {
    BTreeMap::from([
        ("display_name", "Acme Events"),
        ("logo_url", "https://cdn.acme.example/logo.png"),
        ("primary_color", "#0a3d62"),
        ("secondary_color", "#e58e26"),
        ("font_family", "Inter"),
        (
            "footer_text",
            "Acme Events Ltd, Plot 12, Cairo Road, Lusaka, Zambia",
        ),
        ("website_url", "https://events.acme.example"),
        ("support_email", "help@acme.example"),
    ])
}

/// The branded email with its programme as data: a 20-item agenda (a list of objects with a
/// time, a title and a room) rendered with a loop and the `time` filter.
fn agenda_email() -> TemplateContent {
    let mut content = email();
    content.body = content.body.replace(
        "<h2>The evening</h2>",
        r#"<h2>The programme</h2>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0">
{% for item in agenda %}  <tr><td style="padding:4px 8px 4px 0;white-space:nowrap;">{{ item.starts_at | time }}</td><td style="padding:4px 0;"><strong>{{ item.title }}</strong>{% if item.room %} &middot; {{ item.room }}{% endif %}</td></tr>
{% endfor %}</table>
<h2>The evening</h2>"#,
    );
    content.variables.push(
        serde_json::from_value(serde_json::json!({
            "name": "agenda", "type": "list",
            "items": {"type": "object", "fields": [
                {"name": "title"}, {"name": "starts_at", "type": "datetime"},
                {"name": "room", "required": false}
            ]}
        }))
        .expect("a declaration"),
    );
    content
}

fn agenda(items: usize) -> serde_json::Value {
    serde_json::Value::Array(
        (0..items)
            .map(|i| {
                serde_json::json!({
                    "title": format!("Session {i}: community libraries and the year ahead"),
                    "starts_at": format!("2026-12-12T{:02}:{:02}:00Z", 8 + i / 2, (i % 2) * 30),
                    "room": if i % 3 == 0 { serde_json::json!("Ballroom") } else { serde_json::json!("Terrace") },
                })
            })
            .collect(),
    )
}

/// The same source in a plain minijinja environment (HTML auto-escaping for the email), compiled
/// once: what the engine itself costs, the reference for Herald's send path.
fn bare_engine<'s>(name: &'s str, source: &'s str) -> minijinja::Environment<'s> {
    let mut env = minijinja::Environment::new();
    env.add_template(name, source).expect("compiles");
    env
}

fn rendering(c: &mut Criterion) {
    let brand = brand();
    let (sms, email, agenda_email) = (sms(), email(), agenda_email());
    let (sms_vars, email_vars) = (sms.samples(), email.samples());
    let mut agenda_vars = email.samples();
    agenda_vars.insert("agenda".into(), agenda(20));
    let audience = Audience {
        locale: Some("en-GB".into()),
        time_zone: Some("Africa/Lusaka".into()),
        unsubscribe: None,
    };
    let cache = TemplateCache::default();
    let key = |category, channel| TemplateKey {
        tenant: "acme".parse().expect("tenant"),
        event: "gala-2026".parse().expect("event"),
        snapshot_version: 1,
        category,
        channel,
    };
    let (sms_key, email_key, agenda_key) = (
        key(Category::Invitation, Channel::Sms),
        key(Category::Invitation, Channel::Email),
        key(Category::EventReminder, Channel::Email),
    );
    let compiled = |key: &TemplateKey, channel, content: &TemplateContent| {
        cache
            .get_or_compile(key, || {
                Template::compile(channel, Compliance::None, content, &brand)
            })
            .expect("compiles")
    };

    let out = compiled(&sms_key, Channel::Sms, &sms)
        .render_message(&sms_vars, &audience)
        .expect("the SMS renders");
    let segments = out.segments.expect("SMS has segments");
    assert!((135..=150).contains(&segments.characters), "{segments:?}");
    assert_eq!(segments.segments, 1);

    let out = compiled(&email_key, Channel::Email, &email)
        .render_message(&email_vars, &audience)
        .expect("the email renders");
    let body = Renderer::new()
        .render(Channel::Email, &email, &email_vars, &brand)
        .expect("renders")
        .body;
    assert!(
        (2_000..=4_096).contains(&body.len()),
        "body is {} bytes",
        body.len()
    );
    assert!(out.html.is_some_and(|h| h.contains("Acme Winter Gala")));
    assert!(out.text.contains("Reply to the invitation (https://"));
    // Laid out once per template, the email is the same as laid out whole.
    assert_eq!(
        Some(
            Renderer::new()
                .render_message(Channel::Email, &email, &email_vars, &brand)
                .expect("renders")
        ),
        compiled(&email_key, Channel::Email, &email)
            .render_message(&email_vars, &audience)
            .ok()
    );
    let out = compiled(&agenda_key, Channel::Email, &agenda_email)
        .render_message(&agenda_vars, &audience)
        .expect("the agenda email renders");
    assert!(out.text.contains("Session 19"), "{}", out.text);
    assert!(
        out.text.contains("19:30"),
        "local time in Lusaka: {}",
        out.text
    );

    // The engine alone, on the same sources and values.
    let sms_env = bare_engine("sms.txt", &sms.body);
    let sms_context = minijinja::Value::from_serialize(
        sms_vars
            .iter()
            .map(|(k, v)| (k.as_str(), minijinja::Value::from_serialize(v)))
            .chain([("brand", minijinja::Value::from_serialize(&brand))])
            .collect::<BTreeMap<_, _>>(),
    );
    let email_env = bare_engine("email.html", &email.body);
    let email_context = minijinja::Value::from_serialize(&email_vars);
    c.bench_function("bare minijinja: SMS (precompiled)", |b| {
        b.iter(|| {
            sms_env
                .get_template("sms.txt")
                .and_then(|t| t.render(black_box(&sms_context)))
        })
    });
    c.bench_function("bare minijinja: email body (precompiled)", |b| {
        b.iter(|| {
            email_env
                .get_template("email.html")
                .and_then(|t| t.render(black_box(&email_context)))
        })
    });

    c.bench_function("send path: SMS (140 chars, 3 variables) + segments", |b| {
        b.iter(|| {
            compiled(&sms_key, Channel::Sms, &sms)
                .render_message(black_box(&sms_vars), black_box(&audience))
        })
    });
    c.bench_function(
        "send path: branded email (3 KB body, 5 variables) into html + text",
        |b| {
            b.iter(|| {
                compiled(&email_key, Channel::Email, &email)
                    .render_message(black_box(&email_vars), black_box(&audience))
            })
        },
    );
    c.bench_function(
        "send path: branded email with a 20-item agenda into html + text",
        |b| {
            b.iter(|| {
                compiled(&agenda_key, Channel::Email, &agenda_email)
                    .render_message(black_box(&agenda_vars), black_box(&audience))
            })
        },
    );
    c.bench_function(
        "compile + render: branded email (previews, validation)",
        |b| {
            b.iter(|| {
                Renderer::new().render_message(
                    Channel::Email,
                    black_box(&email),
                    black_box(&email_vars),
                    black_box(&brand),
                )
            })
        },
    );

    // Where the email's time goes: the plain-text conversion alone.
    c.bench_function("of which: plain-text alternative", |b| {
        b.iter(|| herald_shared::rendering::html_to_text(black_box(&body)))
    });
}

mod support;

/// `POST /tenant/templates/invitation/email/preview` with the 3 KB email as a draft, over the
/// in-memory stores (the tenant's brand saved first): compile + render + answer, per request.
fn preview(c: &mut Criterion) {
    use std::sync::Arc;

    use herald_shared::api;
    use herald_shared::app::App;
    use serde_json::{Value, json};

    let fixture = |name: &str| -> Value {
        let path = format!(
            "{}/../events/config-api/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).expect("fixture");
        serde_json::from_str(&text).expect("fixture is JSON")
    };
    let request = |event: &Value| {
        lambda_http::request::from_str(&event.to_string()).expect("API Gateway event")
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let app = App::in_memory(
        Arc::new(support::NoProviders),
        Arc::new(support::NoProviders),
    );
    let saved = runtime
        .block_on(api::serve_any(&app, request(&fixture("put-tenant-brand"))))
        .expect("answers");
    assert_eq!(saved.status(), 200);

    let draft = email();
    let mut preview = fixture("preview-tenant-template");
    preview["pathParameters"]["channel"] = json!("email");
    preview["body"] =
        json!(json!({"content": draft, "variables": {"guest_name": "Grace Hopper"}}).to_string());
    let answer = runtime
        .block_on(api::serve_any(&app, request(&preview)))
        .expect("answers");
    assert_eq!(answer.status(), 200, "{:?}", answer.body());

    c.bench_function(
        "preview a draft branded email (3 KB body) through the handler",
        |b| {
            b.to_async(&runtime)
                .iter(|| api::serve_any(&app, request(black_box(&preview))))
        },
    );
}

criterion_group!(benches, rendering, preview);
criterion_main!(benches);
