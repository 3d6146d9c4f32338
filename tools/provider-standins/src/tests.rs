//! End-to-end tests over real HTTP: credentials accepted and rejected in each provider's shape,
//! sends answered in the documented shape, faults failing exactly the requests asked for, status
//! callbacks delivered to a local receiver as Twilio delivers them.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    Accounts, CallbackAttempt, DeliveryOutcome, Fault, MetaInbound, MetaTemplate, Provider,
    RunningStandIns, STATUS_CALLBACK_ATTEMPTS, STATUS_CALLBACK_RETRY_DELAY, StandIns,
    StandInsBuilder, TwilioContent, TwilioInbound,
};

const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
const TWILIO_TOKEN: &str = "twilio-token";
const AT_USER: &str = "sandbox";
const AT_KEY: &str = "at-key";
const BREVO_KEY: &str = "xkeysib-test";
const META_PHONE_ID: &str = "106540352242922";
const META_TOKEN: &str = "meta-token";
const META_WABA_ID: &str = "102290129340398";

const TWILIO_KEY_SID: &str = "SK0123456789abcdef0123456789abcdef";
const TWILIO_KEY_SECRET: &str = "key-secret";

fn builder() -> StandInsBuilder {
    StandIns::builder()
        .twilio_account(TWILIO_SID, TWILIO_TOKEN)
        .twilio_api_key(TWILIO_SID, TWILIO_KEY_SID, TWILIO_KEY_SECRET)
        .africastalking_account(AT_USER, AT_KEY)
        .brevo_key(BREVO_KEY)
        .meta_business_phone_number(META_WABA_ID, META_PHONE_ID, META_TOKEN)
}

async fn spawn() -> anyhow::Result<(RunningStandIns, reqwest::Client)> {
    let standins = builder().build().spawn().await?;
    Ok((standins, reqwest::Client::new()))
}

async fn json_of(response: reqwest::Response) -> anyhow::Result<(StatusCode, Value)> {
    let status = response.status();
    let text = response.text().await?;
    let body = serde_json::from_str(&text).with_context(|| format!("not JSON: {text}"))?;
    Ok((status, body))
}

fn twilio_send(
    client: &reqwest::Client,
    standins: &RunningStandIns,
    form: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    client
        .post(format!(
            "{}/2010-04-01/Accounts/{TWILIO_SID}/Messages.json",
            standins.twilio_base_url()
        ))
        .basic_auth(TWILIO_SID, Some(TWILIO_TOKEN))
        .form(form)
}

#[tokio::test]
async fn base_urls_follow_the_provider_prefixes() -> anyhow::Result<()> {
    let (standins, _) = spawn().await?;
    let base = standins.base_url();
    assert!(base.starts_with("http://127.0.0.1:"));
    assert_eq!(standins.twilio_base_url(), format!("{base}/twilio"));
    assert_eq!(
        standins.africastalking_base_url(),
        format!("{base}/africastalking")
    );
    assert_eq!(standins.brevo_base_url(), format!("{base}/brevo"));
    assert_eq!(standins.meta_graph_base_url(), format!("{base}/meta/v21.0"));
    assert_eq!(
        standins.twilio_content_base_url(),
        format!("{base}/twilio-content")
    );
    assert_eq!(
        standins.urls().twilio_content,
        standins.twilio_content_base_url()
    );
    Ok(())
}

#[tokio::test]
async fn twilio_accepts_its_credentials_and_rejects_others() -> anyhow::Result<()> {
    let (standins, client) = spawn().await?;
    let account_url = format!(
        "{}/2010-04-01/Accounts/{TWILIO_SID}.json",
        standins.twilio_base_url()
    );

    for (user, pass) in [
        (TWILIO_SID, TWILIO_TOKEN),
        ("SK0123456789abcdef0123456789abcdef", "key-secret"),
    ] {
        let (status, account) = json_of(
            client
                .get(&account_url)
                .basic_auth(user, Some(pass))
                .send()
                .await?,
        )
        .await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(account["sid"], TWILIO_SID);
        assert_eq!(account["status"], "active");
        assert_eq!(account["type"], "Full");
        assert_eq!(
            account["uri"],
            format!("/2010-04-01/Accounts/{TWILIO_SID}.json")
        );
        // RFC 2822, e.g. "Thu, 01 Jan 2026 10:00:00 +0000".
        let created = account["date_created"].as_str().context("date_created")?;
        assert!(
            created.ends_with("+0000") && created.contains(", "),
            "{created}"
        );
    }

    for auth in [
        Some((TWILIO_SID, "wrong")),
        Some(("ACnobody", TWILIO_TOKEN)),
        None,
    ] {
        let mut request = client.get(&account_url);
        if let Some((user, pass)) = auth {
            request = request.basic_auth(user, Some(pass));
        }
        let response = request.send().await?;
        assert!(response.headers().contains_key("www-authenticate"));
        let (status, body) = json_of(response).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            body,
            json!({
                "code": 20003,
                "message": "Authenticate",
                "more_info": "https://www.twilio.com/docs/errors/20003",
                "status": 401,
            })
        );
    }
    Ok(())
}

#[tokio::test]
async fn twilio_send_answers_with_a_queued_message_resource() -> anyhow::Result<()> {
    let (standins, client) = spawn().await?;
    let (status, message) = json_of(
        twilio_send(
            &client,
            &standins,
            &[
                ("To", "+254711000001"),
                ("From", "+15005550006"),
                ("Body", "Your code is 1234"),
                ("StatusCallback", "https://example.com/receipts"),
            ],
        )
        .send()
        .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::CREATED);
    let sid = message["sid"].as_str().context("sid")?;
    assert!(sid.starts_with("SM") && sid.len() == 34);
    assert_eq!(message["status"], "queued");
    assert_eq!(message["direction"], "outbound-api");
    assert_eq!(message["num_segments"], "1");
    assert_eq!(message["price"], Value::Null);
    assert_eq!(message["api_version"], "2010-04-01");
    assert_eq!(message["to"], "+254711000001");
    assert_eq!(message["from"], "+15005550006");
    assert_eq!(message["body"], "Your code is 1234");
    assert_eq!(message["account_sid"], TWILIO_SID);
    assert_eq!(
        message["uri"],
        format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages/{sid}.json")
    );

    let sent = standins.sent_messages_for(Provider::Twilio);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].id, sid);
    assert_eq!(sent[0].body.as_deref(), Some("Your code is 1234"));
    let request = &standins.requests_for(Provider::Twilio)[0];
    assert_eq!(
        request.path,
        format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
    );
    assert_eq!(request.status, Some(201));
    assert!(request.form().contains(&(
        "StatusCallback".into(),
        "https://example.com/receipts".into()
    )));

    // WhatsApp through Twilio: both ends carry the channel prefix.
    let (status, whatsapp) = json_of(
        twilio_send(
            &client,
            &standins,
            &[
                ("To", "whatsapp:+254711000001"),
                ("From", "whatsapp:+14155238886"),
                ("Body", "hi"),
            ],
        )
        .send()
        .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(whatsapp["to"], "whatsapp:+254711000001");

    // Through a Messaging Service the sender is picked later.
    let (status, via_service) = json_of(
        twilio_send(
            &client,
            &standins,
            &[
                ("To", "+254711000001"),
                ("MessagingServiceSid", "MG0123456789abcdef0123456789abcdef"),
                ("Body", "hi"),
            ],
        )
        .send()
        .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(via_service["status"], "accepted");
    assert_eq!(via_service["from"], Value::Null);
    assert_eq!(via_service["num_segments"], "0");
    Ok(())
}

#[tokio::test]
async fn twilio_rejects_bad_numbers_with_its_error_codes() -> anyhow::Result<()> {
    let (standins, client) = spawn().await?;
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, u32);
    let cases: [Case; 5] = [
        (
            &[
                ("To", "0711000001"),
                ("From", "+15005550006"),
                ("Body", "x"),
            ],
            400,
            21211,
        ),
        (
            &[
                ("To", "+15005550001"),
                ("From", "+15005550006"),
                ("Body", "x"),
            ],
            400,
            21211,
        ),
        (
            &[
                ("To", "+15005550009"),
                ("From", "+15005550006"),
                ("Body", "x"),
            ],
            400,
            21614,
        ),
        (
            &[
                ("To", "whatsapp:+254711000001"),
                ("From", "+15005550006"),
                ("Body", "x"),
            ],
            400,
            21910,
        ),
        (&[("From", "+15005550006"), ("Body", "x")], 400, 21604),
    ];
    for (form, status, code) in cases {
        let (got_status, body) =
            json_of(twilio_send(&client, &standins, form).send().await?).await?;
        assert_eq!(got_status.as_u16(), status, "{form:?}: {body}");
        assert_eq!(body["code"], code, "{form:?}: {body}");
        assert_eq!(body["status"], status);
        assert_eq!(
            body["more_info"],
            format!("https://www.twilio.com/docs/errors/{code}")
        );
    }
    let (_, body) = json_of(
        twilio_send(
            &client,
            &standins,
            &[
                ("To", "0711000001"),
                ("From", "+15005550006"),
                ("Body", "x"),
            ],
        )
        .send()
        .await?,
    )
    .await?;
    assert_eq!(
        body["message"],
        "The 'To' number 0711000001 is not a valid phone number."
    );
    assert!(standins.sent_messages().is_empty());
    Ok(())
}

#[tokio::test]
async fn africastalking_checks_the_api_key_and_reports_per_recipient() -> anyhow::Result<()> {
    let (standins, client) = spawn().await?;
    let base = standins.africastalking_base_url();

    let (status, user) = json_of(
        client
            .get(format!("{base}/version1/user?username={AT_USER}"))
            .header("apiKey", AT_KEY)
            .header("Accept", "application/json")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user, json!({ "UserData": { "balance": "KES 1000.0000" } }));

    let rejected = client
        .get(format!("{base}/version1/user?username={AT_USER}"))
        .header("apiKey", "wrong")
        .header("Accept", "application/json")
        .send()
        .await?;
    assert_eq!(rejected.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        rejected.text().await?,
        "The supplied authentication is invalid"
    );

    let response = client
        .post(format!("{base}/version1/messaging"))
        .header("apiKey", AT_KEY)
        .header("Accept", "application/json")
        .form(&[
            ("username", AT_USER),
            ("to", "+254711000001,0711"),
            ("message", "Hello"),
            ("from", "HERALD"),
        ])
        .send()
        .await?;
    assert_eq!(
        response.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json"[..])
    );
    let (status, sent) = json_of(response).await?;
    assert_eq!(status, StatusCode::CREATED);
    let data = &sent["SMSMessageData"];
    assert_eq!(data["Message"], "Sent to 1/2 Total Cost: KES 0.8000");
    let ok = &data["Recipients"][0];
    assert_eq!(ok["statusCode"], 101);
    assert_eq!(ok["status"], "Success");
    assert_eq!(ok["number"], "+254711000001");
    assert_eq!(ok["cost"], "KES 0.8000");
    assert!(
        ok["messageId"]
            .as_str()
            .is_some_and(|id| id.starts_with("ATXid_"))
    );
    let bad = &data["Recipients"][1];
    assert_eq!(bad["statusCode"], 403);
    assert_eq!(bad["status"], "InvalidPhoneNumber");
    assert_eq!(bad["messageId"], "None");

    // The JSON bulk endpoint answers in the same shape and shares the balance.
    let (status, bulk) = json_of(
        client
            .post(format!("{base}/version1/messaging/bulk"))
            .header("apiKey", AT_KEY)
            .header("Accept", "application/json")
            .json(&json!({
                "username": AT_USER,
                "message": "Hello",
                "senderId": "HERALD",
                "phoneNumbers": ["+254711000002"],
            }))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(bulk["SMSMessageData"]["Recipients"][0]["statusCode"], 101);
    let (_, user) = json_of(
        client
            .get(format!("{base}/version1/user?username={AT_USER}"))
            .header("apiKey", AT_KEY)
            .header("Accept", "application/json")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(user["UserData"]["balance"], "KES 998.4000");

    let sent: Vec<String> = standins
        .sent_messages_for(Provider::AfricasTalking)
        .into_iter()
        .map(|m| m.to)
        .collect();
    assert_eq!(sent, ["+254711000001", "+254711000002"]);

    // Without `Accept: application/json` the API answers in XML.
    let xml = client
        .get(format!("{base}/version1/user?username={AT_USER}"))
        .header("apiKey", AT_KEY)
        .send()
        .await?
        .text()
        .await?;
    assert!(
        xml.contains("<UserData><balance>KES 998.4000</balance></UserData>"),
        "{xml}"
    );
    Ok(())
}

#[tokio::test]
async fn brevo_checks_the_key_and_returns_a_message_id() -> anyhow::Result<()> {
    let (standins, client) = spawn().await?;
    let base = standins.brevo_base_url();

    let (status, account) = json_of(
        client
            .get(format!("{base}/v3/account"))
            .header("api-key", BREVO_KEY)
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert!(account["email"].is_string() && account["plan"].is_array());

    let (status, body) = json_of(
        client
            .get(format!("{base}/v3/account"))
            .header("api-key", "nope")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({ "code": "unauthorized", "message": "Key not found" })
    );

    let email = |to: &str| {
        json!({
            "sender": { "name": "Herald", "email": "noreply@herald.example" },
            "to": [{ "email": to, "name": "Ana" }],
            "subject": "Welcome",
            "htmlContent": "<p>Hi</p>",
            "textContent": "Hi",
            "headers": { "X-Herald-Message": "msg_1" },
            "tags": ["welcome"],
        })
    };
    let (status, sent) = json_of(
        client
            .post(format!("{base}/v3/smtp/email"))
            .header("api-key", BREVO_KEY)
            .json(&email("ana@example.com"))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::CREATED);
    let id = sent["messageId"].as_str().context("messageId")?;
    assert!(
        id.starts_with('<') && id.ends_with("@smtp-relay.mailin.fr>"),
        "{id}"
    );

    let (status, body) = json_of(
        client
            .post(format!("{base}/v3/smtp/email"))
            .header("api-key", BREVO_KEY)
            .json(&email("not-an-address"))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_parameter");

    let sent = standins.sent_messages_for(Provider::Brevo);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].subject.as_deref(), Some("Welcome"));
    assert_eq!(sent[0].to, "ana@example.com");
    Ok(())
}

#[tokio::test]
async fn meta_checks_the_token_and_the_phone_number_id() -> anyhow::Result<()> {
    let (standins, client) = spawn().await?;
    let graph = standins.meta_graph_base_url();

    let (status, number) = json_of(
        client
            .get(format!("{graph}/{META_PHONE_ID}"))
            .bearer_auth(META_TOKEN)
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(number["id"], META_PHONE_ID);
    assert_eq!(number["quality_rating"], "GREEN");
    assert!(number["verified_name"].is_string() && number["display_phone_number"].is_string());

    let (status, body) = json_of(
        client
            .get(format!("{graph}/{META_PHONE_ID}"))
            .bearer_auth("garbage")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], 190);
    assert_eq!(body["error"]["type"], "OAuthException");
    assert_eq!(
        body["error"]["message"],
        "Invalid OAuth access token - Cannot parse access token"
    );
    assert!(body["error"]["fbtrace_id"].is_string());

    let (status, body) = json_of(
        client
            .get(format!("{graph}/999999"))
            .bearer_auth(META_TOKEN)
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], 100);
    assert_eq!(body["error"]["error_subcode"], 33);

    // Free-form text needs the customer's window: they wrote first.
    standins
        .meta_inbound(MetaInbound::new(META_PHONE_ID, "+254711000001", "Hi"))
        .await?;
    standins.register(Accounts::new().meta_template(MetaTemplate::new(
        META_WABA_ID,
        "otp",
        "en_US",
        vec![json!({ "type": "BODY", "text": "Your code is 1234" })],
    )));
    let (status, sent) = json_of(
        client
            .post(format!("{graph}/{META_PHONE_ID}/messages"))
            .bearer_auth(META_TOKEN)
            .json(&json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "+254711000001",
                "type": "text",
                "text": { "body": "Hello" },
            }))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sent["messaging_product"], "whatsapp");
    assert_eq!(
        sent["contacts"],
        json!([{ "input": "+254711000001", "wa_id": "254711000001" }])
    );
    let wamid = sent["messages"][0]["id"].as_str().context("message id")?;
    assert!(wamid.starts_with("wamid."));

    let (status, template) = json_of(
        client
            .post(format!("{graph}/{META_PHONE_ID}/messages"))
            .bearer_auth(META_TOKEN)
            .json(&json!({
                "messaging_product": "whatsapp",
                "to": "254711000001",
                "type": "template",
                "template": { "name": "otp", "language": { "code": "en_US" } },
            }))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(template["messages"][0]["message_status"], "accepted");

    let sent = standins.sent_messages_for(Provider::Meta);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].body.as_deref(), Some("Hello"));
    assert_eq!(sent[1].template.as_deref(), Some("otp"));
    Ok(())
}

#[tokio::test]
async fn an_injected_fault_fails_exactly_n_requests() -> anyhow::Result<()> {
    let (standins, client) = spawn().await?;
    standins.fail_next(Provider::Twilio, 2, Fault::Status(503));
    assert_eq!(standins.pending_faults(Provider::Twilio), 2);
    let form = [
        ("To", "+254711000001"),
        ("From", "+15005550006"),
        ("Body", "x"),
    ];

    for _ in 0..2 {
        let (status, body) = json_of(twilio_send(&client, &standins, &form).send().await?).await?;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["code"], 20503);
        assert_eq!(body["status"], 503);
    }
    let (status, _) = json_of(twilio_send(&client, &standins, &form).send().await?).await?;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(standins.pending_faults(Provider::Twilio), 0);
    assert_eq!(standins.sent_messages_for(Provider::Twilio).len(), 1);

    let faults: Vec<Option<Fault>> = standins.requests().iter().map(|r| r.fault).collect();
    assert_eq!(
        faults,
        [Some(Fault::Status(503)), Some(Fault::Status(503)), None]
    );

    // Other providers are untouched; 429 carries Retry-After and the provider's body.
    standins.fail_next(Provider::Meta, 1, Fault::Status(429));
    let response = client
        .get(format!(
            "{}/{META_PHONE_ID}",
            standins.meta_graph_base_url()
        ))
        .bearer_auth(META_TOKEN)
        .send()
        .await?;
    assert_eq!(
        response.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    let (status, body) = json_of(response).await?;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"]["code"], 130_429);
    Ok(())
}

#[tokio::test]
async fn a_delay_fault_makes_the_client_time_out_once() -> anyhow::Result<()> {
    let (standins, client) = spawn().await?;
    standins.fail_next(Provider::Brevo, 1, Fault::Delay(Duration::from_secs(30)));
    let account = || {
        client
            .get(format!("{}/v3/account", standins.brevo_base_url()))
            .header("api-key", BREVO_KEY)
            .timeout(Duration::from_millis(300))
            .send()
    };
    let timed_out = account().await;
    assert!(
        timed_out.as_ref().is_err_and(reqwest::Error::is_timeout),
        "{timed_out:?}"
    );
    assert_eq!(account().await?.status(), StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn the_control_api_mirrors_the_rust_api() -> anyhow::Result<()> {
    let (standins, client) = spawn().await?;
    let control = format!("{}/_standin", standins.base_url());

    let (status, health) = json_of(client.get(format!("{control}/health")).send().await?).await?;
    assert_eq!(
        (status, health),
        (StatusCode::OK, json!({ "status": "ok" }))
    );

    // Credentials registered at run time are accepted from then on.
    let url = format!("{}/v3/account", standins.brevo_base_url());
    let before = client
        .get(&url)
        .header("api-key", "late-key")
        .send()
        .await?;
    assert_eq!(before.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = json_of(
        client
            .post(format!("{control}/accounts"))
            .json(&json!({ "brevo": [{ "api_key": "late-key" }] }))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        client
            .get(&url)
            .header("api-key", "late-key")
            .send()
            .await?
            .status(),
        StatusCode::OK
    );

    let (status, pending) = json_of(
        client
            .post(format!("{control}/faults"))
            .json(&json!({ "provider": "brevo", "count": 1, "status": 500 }))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pending["pending"]["brevo"], 1);
    let (status, body) = json_of(
        client
            .get(&url)
            .header("api-key", "late-key")
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body["code"].is_string() && body["message"].is_string());

    let bad = client
        .post(format!("{control}/faults"))
        .json(&json!({ "provider": "brevo", "status": 500, "delay_ms": 10 }))
        .send()
        .await?;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    let (_, requests) = json_of(
        client
            .get(format!("{control}/requests?provider=brevo"))
            .send()
            .await?,
    )
    .await?;
    let statuses: Vec<&Value> = requests
        .as_array()
        .context("requests array")?
        .iter()
        .map(|r| &r["status"])
        .collect();
    assert_eq!(statuses, [&json!(401), &json!(200), &json!(500)]);
    assert_eq!(requests[2]["fault"], json!({ "status": 500 }));

    let cleared = client.delete(format!("{control}/requests")).send().await?;
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    assert!(standins.requests().is_empty());
    Ok(())
}

#[tokio::test]
async fn waiting_for_sends_and_shutting_down() -> anyhow::Result<()> {
    let (standins, client) = spawn().await?;
    let url = format!("{}/v3/smtp/email", standins.brevo_base_url());
    let send = client.post(url).header("api-key", BREVO_KEY).json(&json!({
        "sender": { "email": "noreply@herald.example" },
        "to": [{ "email": "ana@example.com" }],
        "subject": "Hi",
        "textContent": "Hi",
    }));
    let later = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        send.send().await
    });
    let sent = standins
        .wait_for_sent(Provider::Brevo, 1, Duration::from_secs(5))
        .await?;
    assert_eq!(sent[0].to, "ana@example.com");
    later.await??;
    assert!(
        standins
            .wait_for_sent(Provider::Twilio, 1, Duration::from_millis(20))
            .await
            .is_err()
    );

    let health = format!("{}/_standin/health", standins.base_url());
    standins.shutdown().await?;
    assert!(reqwest::Client::new().get(health).send().await.is_err());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Twilio status callbacks
// ---------------------------------------------------------------------------------------------

/// Short, so the callback tests run quickly; the retry delay stays the real one.
const CALLBACK_DELAY: Duration = Duration::from_millis(20);

async fn spawn_with_callbacks() -> anyhow::Result<(RunningStandIns, reqwest::Client)> {
    let standins = builder()
        .status_callback_delay(CALLBACK_DELAY)
        .build()
        .spawn()
        .await?;
    Ok((standins, reqwest::Client::new()))
}

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Hit {
    method: String,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Hit {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    fn field(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

#[derive(Clone, Default)]
struct ReceiverState {
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Status to answer with; 0 means 200.
    answer: Arc<AtomicU16>,
}

/// A local webhook receiver on 127.0.0.1 standing in for Herald's receipt route.
struct Receiver {
    base_url: String,
    state: ReceiverState,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Receiver {
    async fn start(answer: u16) -> anyhow::Result<Self> {
        let state = ReceiverState::default();
        state.answer.store(answer, Ordering::Relaxed);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(state.clone());
        let task = tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self {
            base_url,
            state,
            task,
        })
    }

    fn hits(&self) -> Vec<Hit> {
        self.state
            .hits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State(state): State<ReceiverState>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::http::StatusCode {
    state
        .hits
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Hit {
            method: method.to_string(),
            path_and_query: uri
                .path_and_query()
                .map(ToString::to_string)
                .unwrap_or_default(),
            headers,
            body,
        });
    match state.answer.load(Ordering::Relaxed) {
        0 => axum::http::StatusCode::OK,
        status => axum::http::StatusCode::from_u16(status)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// Twilio's signature computed here from what the receiver got, as a receiver would: base64
/// HMAC-SHA1 keyed with the auth token over the URL, then each parameter's name and value
/// sorted by name.
fn expected_signature(auth_token: &str, url: &str, body: &[u8]) -> anyhow::Result<String> {
    let mut params: Vec<(String, String)> =
        url::form_urlencoded::parse(body).into_owned().collect();
    params.sort();
    let mut signed = url.to_owned();
    for (name, value) in params {
        signed.push_str(&name);
        signed.push_str(&value);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes())?;
    mac.update(signed.as_bytes());
    Ok(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// Sends a Twilio message, answered 201; returns its sid.
async fn twilio_send_ok(request: reqwest::RequestBuilder) -> anyhow::Result<String> {
    let (status, message) = json_of(request.send().await?).await?;
    anyhow::ensure!(status == StatusCode::CREATED, "{status}: {message}");
    Ok(message["sid"].as_str().context("sid")?.to_owned())
}

fn callbacks_for(standins: &RunningStandIns, sid: &str) -> Vec<CallbackAttempt> {
    standins
        .status_callbacks()
        .into_iter()
        .filter(|c| c.message_id == sid)
        .collect()
}

/// Waits (bounded) until `sid` has `count` callback attempts recorded.
async fn wait_for_callbacks(
    standins: &RunningStandIns,
    sid: &str,
    count: usize,
) -> anyhow::Result<Vec<CallbackAttempt>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = callbacks_for(standins, sid);
        if got.len() >= count {
            return Ok(got);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{sid}: {} of {count} callback attempts: {got:?}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn twilio_reports_sent_then_delivered_to_the_status_callback() -> anyhow::Result<()> {
    let (standins, client) = spawn_with_callbacks().await?;
    let receiver = Receiver::start(0).await?;
    // The signature covers the URL exactly as given, query and escapes included.
    let callback = format!(
        "{}/webhooks/twilio/whk_tw_test?cfg=a%2Fb&n=1",
        receiver.base_url
    );
    // Created with an API key: the callbacks are still signed with the account's auth token.
    let sid = twilio_send_ok(
        client
            .post(format!(
                "{}/2010-04-01/Accounts/{TWILIO_SID}/Messages.json",
                standins.twilio_base_url()
            ))
            .basic_auth(TWILIO_KEY_SID, Some(TWILIO_KEY_SECRET))
            .form(&[
                ("To", "+254711000001"),
                ("From", "+15005550006"),
                ("Body", "Your code is 1234"),
                ("StatusCallback", callback.as_str()),
            ]),
    )
    .await?;

    let attempts = standins
        .wait_for_status_callbacks(2, Duration::from_secs(20))
        .await?;
    let statuses: Vec<(&str, u32, Option<u16>)> = attempts
        .iter()
        .map(|a| (a.message_status.as_str(), a.attempt, a.http_status))
        .collect();
    assert_eq!(
        statuses,
        [("sent", 1, Some(200)), ("delivered", 1, Some(200))]
    );
    assert!(attempts.iter().all(|a| a.message_id == sid
        && a.url == callback
        && a.error_code.is_none()
        && a.succeeded()));

    let hits = receiver.hits();
    assert_eq!(hits.len(), 2, "{hits:?}");
    for (hit, status) in hits.iter().zip(["sent", "delivered"]) {
        assert_eq!(hit.method, "POST");
        assert_eq!(
            hit.path_and_query,
            "/webhooks/twilio/whk_tw_test?cfg=a%2Fb&n=1"
        );
        assert_eq!(
            hit.header("content-type"),
            Some("application/x-www-form-urlencoded; charset=utf-8")
        );
        assert_eq!(hit.header("user-agent"), Some("TwilioProxy/1.1"));
        let signature = hit.header("x-twilio-signature").context("signature")?;
        assert_eq!(
            signature,
            expected_signature(TWILIO_TOKEN, &callback, &hit.body)?
        );
        assert_ne!(
            signature,
            expected_signature("key-secret", &callback, &hit.body)?
        );
        for (name, value) in [
            ("AccountSid", TWILIO_SID),
            ("ApiVersion", "2010-04-01"),
            ("ChannelPrefix", "sms"),
            ("From", "+15005550006"),
            ("To", "+254711000001"),
            ("MessageSid", sid.as_str()),
            ("SmsSid", sid.as_str()),
            ("MessageStatus", status),
            ("SmsStatus", status),
        ] {
            assert_eq!(hit.field(name).as_deref(), Some(value), "{name}");
        }
        assert_eq!(hit.field("ErrorCode"), None);
    }
    // One idempotency token per status change.
    let tokens: Vec<&str> = hits
        .iter()
        .filter_map(|h| h.header("i-twilio-idempotency-token"))
        .collect();
    assert_eq!(tokens.len(), 2);
    assert_ne!(tokens[0], tokens[1]);
    assert_eq!(tokens[0], attempts[0].idempotency_token);

    // Nothing more follows.
    tokio::time::sleep(CALLBACK_DELAY * 10).await;
    assert_eq!(receiver.hits().len(), 2);
    assert_eq!(standins.status_callbacks().len(), 2);
    Ok(())
}

#[tokio::test]
async fn queued_outcomes_report_undelivered_and_failed_with_their_error_codes() -> anyhow::Result<()>
{
    let (standins, client) = spawn_with_callbacks().await?;
    let receiver = Receiver::start(204).await?;
    let callback = format!("{}/receipts", receiver.base_url);
    standins.twilio_outcome_next(1, DeliveryOutcome::Undelivered { error_code: 30005 });
    standins.twilio_outcome_next(1, DeliveryOutcome::Failed { error_code: 30008 });
    assert_eq!(standins.pending_twilio_outcomes().len(), 2);
    // The WhatsApp customer wrote first, so free-form text may go to them.
    standins
        .twilio_inbound(TwilioInbound::new(
            TWILIO_SID,
            "whatsapp:+254711000002",
            "whatsapp:+14155238886",
            "Hi",
        ))
        .await?;

    let sms = twilio_send_ok(twilio_send(
        &client,
        &standins,
        &[
            ("To", "+254711000001"),
            ("From", "+15005550006"),
            ("Body", "x"),
            ("StatusCallback", &callback),
        ],
    ))
    .await?;
    let whatsapp = twilio_send_ok(twilio_send(
        &client,
        &standins,
        &[
            ("To", "whatsapp:+254711000002"),
            ("From", "whatsapp:+14155238886"),
            ("Body", "x"),
            ("StatusCallback", &callback),
        ],
    ))
    .await?;
    assert!(standins.pending_twilio_outcomes().is_empty());

    let undelivered = wait_for_callbacks(&standins, &sms, 2).await?;
    let reported: Vec<(&str, Option<u32>)> = undelivered
        .iter()
        .map(|a| (a.message_status.as_str(), a.error_code))
        .collect();
    assert_eq!(reported, [("sent", None), ("undelivered", Some(30005))]);
    assert_eq!(undelivered[1].field("ErrorCode"), Some("30005"));
    assert_eq!(undelivered[1].field("SmsStatus"), Some("undelivered"));
    assert_eq!(undelivered[0].field("ErrorCode"), None);
    assert!(undelivered.iter().all(CallbackAttempt::succeeded));

    // A failed message was never sent: one callback, `failed`, on the WhatsApp channel.
    let failed = wait_for_callbacks(&standins, &whatsapp, 1).await?;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].message_status, "failed");
    assert_eq!(failed[0].field("ErrorCode"), Some("30008"));
    assert_eq!(failed[0].field("ChannelPrefix"), Some("whatsapp"));
    assert_eq!(failed[0].field("To"), Some("whatsapp:+254711000002"));
    assert_eq!(failed[0].field("From"), Some("whatsapp:+14155238886"));

    // What the receiver got is what the journal says, signature included.
    let hit = receiver
        .hits()
        .into_iter()
        .find(|h| h.field("MessageSid").as_deref() == Some(whatsapp.as_str()))
        .context("the failed callback")?;
    assert_eq!(hit.field("ErrorCode").as_deref(), Some("30008"));
    assert_eq!(
        hit.header("x-twilio-signature"),
        Some(expected_signature(TWILIO_TOKEN, &callback, &hit.body)?.as_str())
    );
    assert_eq!(
        hit.header("x-twilio-signature"),
        Some(failed[0].signature.as_str())
    );

    tokio::time::sleep(CALLBACK_DELAY * 10).await;
    assert_eq!(receiver.hits().len(), 3);
    Ok(())
}

#[tokio::test]
async fn no_status_callback_means_no_callback() -> anyhow::Result<()> {
    let (standins, client) = spawn_with_callbacks().await?;
    let receiver = Receiver::start(0).await?;
    let callback = format!("{}/receipts", receiver.base_url);
    let control = format!("{}/_standin", standins.base_url());

    // No StatusCallback parameter: nothing to call.
    let plain = twilio_send_ok(twilio_send(
        &client,
        &standins,
        &[
            ("To", "+254711000001"),
            ("From", "+15005550006"),
            ("Body", "x"),
        ],
    ))
    .await?;
    // Outcome "none", queued through the control API: accepted, never reported.
    let (status, state) = json_of(
        client
            .post(format!("{control}/twilio/outcomes"))
            .json(&json!({ "status": "none" }))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        state,
        json!({ "pending": [{ "status": "none" }], "default": { "status": "delivered" } })
    );
    let silent = twilio_send_ok(twilio_send(
        &client,
        &standins,
        &[
            ("To", "+254711000001"),
            ("From", "+15005550006"),
            ("Body", "x"),
            ("StatusCallback", &callback),
        ],
    ))
    .await?;
    // Default "none" (tests posting their own receipts), set through the control API.
    let (status, state) = json_of(
        client
            .put(format!("{control}/twilio/outcomes/default"))
            .json(&json!({ "status": "none" }))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        state,
        json!({ "pending": [], "default": { "status": "none" } })
    );
    twilio_send_ok(twilio_send(
        &client,
        &standins,
        &[
            ("To", "+254711000001"),
            ("From", "+15005550006"),
            ("Body", "x"),
            ("StatusCallback", &callback),
        ],
    ))
    .await?;
    assert_ne!(plain, silent);
    // A receiver off this machine is never called (unless allow_remote_status_callbacks).
    client
        .put(format!("{control}/twilio/outcomes/default"))
        .json(&json!({ "status": "delivered" }))
        .send()
        .await?
        .error_for_status()?;
    twilio_send_ok(twilio_send(
        &client,
        &standins,
        &[
            ("To", "+254711000001"),
            ("From", "+15005550006"),
            ("Body", "x"),
            (
                "StatusCallback",
                "https://hooks.herald.example/receipts/twilio",
            ),
        ],
    ))
    .await?;

    // Only http(s) URLs are callbacks: Twilio answers 21609 for anything else.
    for bad in [
        "ftp://127.0.0.1/receipts",
        "/receipts",
        "https://bad_host.example/r",
    ] {
        let (status, body) = json_of(
            twilio_send(
                &client,
                &standins,
                &[
                    ("To", "+254711000001"),
                    ("From", "+15005550006"),
                    ("Body", "x"),
                    ("StatusCallback", bad),
                ],
            )
            .send()
            .await?,
        )
        .await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["code"], 21609, "{bad}");
    }

    let bad = client
        .post(format!("{control}/twilio/outcomes"))
        .json(&json!({ "status": "delivered", "error_code": 30003 }))
        .send()
        .await?;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let (_, state) = json_of(
        client
            .post(format!("{control}/twilio/outcomes"))
            .json(&json!({ "count": 2, "status": "undelivered" }))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(
        state["pending"],
        json!([
            { "status": "undelivered", "error_code": 30003 },
            { "status": "undelivered", "error_code": 30003 },
        ])
    );
    let cleared = client
        .delete(format!("{control}/twilio/outcomes"))
        .send()
        .await?;
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    assert!(standins.pending_twilio_outcomes().is_empty());

    tokio::time::sleep(CALLBACK_DELAY * 10).await;
    assert!(receiver.hits().is_empty());
    assert!(standins.status_callbacks().is_empty());
    let (_, callbacks) = json_of(client.get(format!("{control}/callbacks")).send().await?).await?;
    assert_eq!(callbacks, json!([]));
    Ok(())
}

#[tokio::test]
async fn a_failing_receiver_gets_bounded_retries_then_no_more() -> anyhow::Result<()> {
    let (standins, client) = spawn_with_callbacks().await?;
    let receiver = Receiver::start(500).await?;
    // A port nothing listens on: connection failures are retried the same way.
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        format!("http://{}/receipts", listener.local_addr()?)
    };
    let per_message = usize::try_from(STATUS_CALLBACK_ATTEMPTS)? * 2;

    let refused = twilio_send_ok(twilio_send(
        &client,
        &standins,
        &[
            ("To", "+254711000001"),
            ("From", "+15005550006"),
            ("Body", "x"),
            ("StatusCallback", &format!("{}/receipts", receiver.base_url)),
        ],
    ))
    .await?;
    let unreachable = twilio_send_ok(twilio_send(
        &client,
        &standins,
        &[
            ("To", "+254711000001"),
            ("From", "+15005550006"),
            ("Body", "x"),
            ("StatusCallback", &closed),
        ],
    ))
    .await?;

    let attempts = wait_for_callbacks(&standins, &refused, per_message).await?;
    let expected: Vec<(&str, u32)> = ["sent", "delivered"]
        .into_iter()
        .flat_map(|s| (1..=STATUS_CALLBACK_ATTEMPTS).map(move |n| (s, n)))
        .collect();
    let got: Vec<(&str, u32)> = attempts
        .iter()
        .map(|a| (a.message_status.as_str(), a.attempt))
        .collect();
    assert_eq!(got, expected);
    assert!(attempts.iter().all(|a| a.http_status == Some(500)));
    // Retries repeat the status change's idempotency token and signature.
    for status in attempts.chunks(usize::try_from(STATUS_CALLBACK_ATTEMPTS)?) {
        assert!(
            status
                .iter()
                .all(|a| a.idempotency_token == status[0].idempotency_token
                    && a.signature == status[0].signature)
        );
    }
    assert_ne!(
        attempts[0].idempotency_token,
        attempts[per_message - 1].idempotency_token
    );

    let failed = wait_for_callbacks(&standins, &unreachable, per_message).await?;
    assert!(
        failed
            .iter()
            .all(|a| a.http_status.is_none() && a.error.is_some()),
        "{failed:?}"
    );

    // Bounded: after the last retry is due, nothing more arrives.
    tokio::time::sleep(STATUS_CALLBACK_RETRY_DELAY * 3 + CALLBACK_DELAY * 5).await;
    assert_eq!(receiver.hits().len(), per_message);
    assert_eq!(standins.status_callbacks().len(), per_message * 2);
    Ok(())
}

#[tokio::test]
async fn shutdown_stops_pending_callbacks() -> anyhow::Result<()> {
    let (standins, client) = spawn_with_callbacks().await?;
    let receiver = Receiver::start(503).await?;
    twilio_send_ok(twilio_send(
        &client,
        &standins,
        &[
            ("To", "+254711000001"),
            ("From", "+15005550006"),
            ("Body", "x"),
            ("StatusCallback", &format!("{}/receipts", receiver.base_url)),
        ],
    ))
    .await?;
    standins
        .wait_for_status_callbacks(1, Duration::from_secs(20))
        .await?;
    // The first attempt failed; its retry is due in STATUS_CALLBACK_RETRY_DELAY.
    standins.shutdown().await?;
    let at_shutdown = receiver.hits().len();
    tokio::time::sleep(STATUS_CALLBACK_RETRY_DELAY * 4).await;
    let later = receiver.hits().len();
    assert!(
        at_shutdown >= 1 && later <= at_shutdown + 1 && later <= 2,
        "{at_shutdown} then {later}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// WhatsApp templates and the customer service window
// ---------------------------------------------------------------------------------------------

const CUSTOMER: &str = "+260971234567";
const CUSTOMER_WA_ID: &str = "260971234567";

fn rsvp_template() -> MetaTemplate {
    MetaTemplate::new(
        META_WABA_ID,
        "rsvp_reminder",
        "en_US",
        vec![
            json!({ "type": "HEADER", "format": "IMAGE" }),
            json!({ "type": "BODY", "text": "Hi {{1}}, {{2}} starts at {{3}}" }),
            json!({ "type": "BUTTONS", "buttons": [
                { "type": "URL", "text": "RSVP", "url": "https://rsvp.example/{{1}}" },
                { "type": "QUICK_REPLY", "text": "No" },
            ] }),
        ],
    )
}

/// The send's `template` object for `rsvp_reminder`, with these body parameters.
fn rsvp_send(name: &str, language: &str, body: Value) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CUSTOMER_WA_ID,
        "type": "template",
        "template": {
            "name": name,
            "language": { "code": language, "policy": "deterministic" },
            "components": [
                { "type": "header", "parameters": [
                    { "type": "image", "image": { "link": "https://cdn.example/banner.jpg" } } ] },
                { "type": "body", "parameters": body },
                { "type": "button", "sub_type": "url", "index": "0",
                  "parameters": [ { "type": "text", "text": "tok_8f2c" } ] },
                { "type": "button", "sub_type": "quick_reply", "index": 1,
                  "parameters": [ { "type": "payload", "payload": "RSVP_NO" } ] },
            ],
        },
    })
}

fn rsvp_body() -> Value {
    json!([
        { "type": "text", "text": "Ada" },
        { "type": "currency", "currency": {
            "fallback_value": "1,250.50 ZMW", "code": "ZMW", "amount_1000": 1_250_500 } },
        { "type": "date_time", "date_time": { "fallback_value": "12 Dec 2026, 20:30" } },
    ])
}

async fn meta_send(
    client: &reqwest::Client,
    standins: &RunningStandIns,
    message: &Value,
) -> anyhow::Result<(StatusCode, Value)> {
    json_of(
        client
            .post(format!(
                "{}/{META_PHONE_ID}/messages",
                standins.meta_graph_base_url()
            ))
            .bearer_auth(META_TOKEN)
            .json(message)
            .send()
            .await?,
    )
    .await
}

fn free_form_text(to: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "to": to,
        "type": "text",
        "text": { "body": "Thanks for writing" },
    })
}

#[tokio::test]
async fn meta_lists_templates_with_paging_and_a_name_filter() -> anyhow::Result<()> {
    let standins = builder()
        .meta_template(rsvp_template())
        .meta_template(
            MetaTemplate::new(
                META_WABA_ID,
                "rsvp_reminder",
                "fr",
                vec![json!({ "type": "BODY", "text": "Bonjour {{1}}" })],
            )
            .with_status("PENDING")
            .with_id("1234567890"),
        )
        .meta_template(
            MetaTemplate::new(META_WABA_ID, "welcome", "en_US", vec![])
                .with_status("REJECTED")
                .with_rejected_reason("INVALID_FORMAT")
                .with_category("MARKETING")
                .with_quality_score("GREEN"),
        )
        // Another business account's template is never listed.
        .meta_template(MetaTemplate::new("999", "secret", "en_US", vec![]))
        .build()
        .spawn()
        .await?;
    let client = reqwest::Client::new();
    let list = format!(
        "{}/{META_WABA_ID}/message_templates",
        standins.meta_graph_base_url()
    );

    let (status, all) = json_of(client.get(&list).bearer_auth(META_TOKEN).send().await?).await?;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<(&str, &str)> = all["data"]
        .as_array()
        .context("data")?
        .iter()
        .filter_map(|t| Some((t["name"].as_str()?, t["language"].as_str()?)))
        .collect();
    assert_eq!(
        names,
        [
            ("rsvp_reminder", "en_US"),
            ("rsvp_reminder", "fr"),
            ("welcome", "en_US")
        ]
    );
    let rsvp = &all["data"][0];
    assert!(rsvp["id"].as_str().is_some_and(|id| id.len() == 16));
    assert_eq!(rsvp["status"], "APPROVED");
    assert_eq!(rsvp["category"], "UTILITY");
    assert_eq!(rsvp["quality_score"], json!({ "score": "UNKNOWN" }));
    assert_eq!(rsvp["rejected_reason"], "NONE");
    assert_eq!(rsvp["components"], json!(rsvp_template().components));
    assert_eq!(all["data"][1]["id"], "1234567890");
    assert_eq!(all["data"][1]["status"], "PENDING");
    assert_eq!(all["data"][2]["rejected_reason"], "INVALID_FORMAT");
    assert_eq!(all["data"][2]["quality_score"]["score"], "GREEN");
    assert!(all["paging"]["cursors"]["before"].is_string());
    assert!(all["paging"].get("next").is_none());

    // Two per page: the next link carries the query on, with the cursor.
    let (_, first) = json_of(
        client
            .get(format!("{list}?limit=2&fields=name,status"))
            .bearer_auth(META_TOKEN)
            .send()
            .await?,
    )
    .await?;
    assert_eq!(first["data"].as_array().map(Vec::len), Some(2));
    let keys: Vec<&String> = first["data"][0]
        .as_object()
        .context("entry")?
        .keys()
        .collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(first["data"][0]["id"].is_string() && first["data"][0]["components"].is_null());
    let next = first["paging"]["next"].as_str().context("next")?;
    assert!(
        next.starts_with(&list) && next.contains("limit=2"),
        "{next}"
    );
    let (_, second) = json_of(client.get(next).bearer_auth(META_TOKEN).send().await?).await?;
    assert_eq!(second["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["data"][0]["name"], "welcome");
    assert!(second["paging"].get("next").is_none());

    // `name` filters exactly: both languages of rsvp_reminder, nothing for a prefix.
    let (_, named) = json_of(
        client
            .get(format!("{list}?name=rsvp_reminder"))
            .bearer_auth(META_TOKEN)
            .send()
            .await?,
    )
    .await?;
    assert_eq!(named["data"].as_array().map(Vec::len), Some(2));
    let (_, prefix) = json_of(
        client
            .get(format!("{list}?name=rsvp"))
            .bearer_auth(META_TOKEN)
            .send()
            .await?,
    )
    .await?;
    assert_eq!(prefix["data"], json!([]));

    // Graph's errors: bad token, another WABA, a bad cursor.
    let (status, body) = json_of(client.get(&list).bearer_auth("garbage").send().await?).await?;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::UNAUTHORIZED, &json!(190))
    );
    let (status, body) = json_of(
        client
            .get(format!(
                "{}/999/message_templates",
                standins.meta_graph_base_url()
            ))
            .bearer_auth(META_TOKEN)
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], 100);
    assert_eq!(body["error"]["error_subcode"], 33);
    let (status, body) = json_of(
        client
            .get(format!("{list}?after=%%%"))
            .bearer_auth(META_TOKEN)
            .send()
            .await?,
    )
    .await?;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!(100))
    );
    Ok(())
}

#[tokio::test]
async fn meta_template_send_is_checked_and_its_body_filled_in() -> anyhow::Result<()> {
    let standins = builder()
        .meta_template(rsvp_template())
        .build()
        .spawn()
        .await?;
    let client = reqwest::Client::new();

    // No window needed for a template.
    let (status, sent) = meta_send(
        &client,
        &standins,
        &rsvp_send("rsvp_reminder", "en_US", rsvp_body()),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(sent["messages"][0]["message_status"], "accepted");
    assert_eq!(sent["contacts"][0]["wa_id"], CUSTOMER_WA_ID);
    let journal = standins.sent_messages_for(Provider::Meta);
    assert_eq!(journal.len(), 1);
    assert_eq!(
        journal[0].body.as_deref(),
        Some("Hi Ada, 1,250.50 ZMW starts at 12 Dec 2026, 20:30")
    );
    assert_eq!(journal[0].template.as_deref(), Some("rsvp_reminder"));
    assert_eq!(journal[0].language.as_deref(), Some("en_US"));
    assert_eq!(
        Some(journal[0].id.as_str()),
        sent["messages"][0]["id"].as_str()
    );

    // Named parameters match by name, in any order.
    standins.register(Accounts::new().meta_template(MetaTemplate::new(
        META_WABA_ID,
        "welcome",
        "fr",
        vec![json!({ "type": "BODY", "text": "Bonjour {{guest_name}}, rendez-vous à {{venue}}" })],
    )));
    let (status, sent) = meta_send(
        &client,
        &standins,
        &json!({
            "messaging_product": "whatsapp",
            "to": CUSTOMER,
            "type": "template",
            "template": { "name": "welcome", "language": { "code": "fr" }, "components": [
                { "type": "body", "parameters": [
                    { "type": "text", "parameter_name": "venue", "text": "Lusaka" },
                    { "type": "text", "parameter_name": "guest_name", "text": "Ada" } ] } ] },
        }),
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(
        standins.sent_messages_for(Provider::Meta)[1]
            .body
            .as_deref(),
        Some("Bonjour Ada, rendez-vous à Lusaka")
    );
    Ok(())
}

#[tokio::test]
async fn meta_refuses_templates_it_cannot_send_with_its_codes() -> anyhow::Result<()> {
    let standins = builder()
        .meta_template(rsvp_template())
        .meta_template(
            MetaTemplate::new(META_WABA_ID, "rsvp_reminder", "fr", vec![]).with_status("PENDING"),
        )
        .build()
        .spawn()
        .await?;
    let client = reqwest::Client::new();
    let refusal = |status: StatusCode, body: &Value, http: u16, code: u32| {
        assert_eq!(status.as_u16(), http, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert_eq!(body["error"]["type"], "OAuthException");
        assert_eq!(body["error"]["error_data"]["messaging_product"], "whatsapp");
        assert!(body["error"]["fbtrace_id"].is_string());
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(&format!("(#{code}) "))),
            "{body}"
        );
    };

    // Unknown name, unknown language, not approved: all 404 / 132001.
    for (name, language) in [
        ("no_such_template", "en_US"),
        ("rsvp_reminder", "de"),
        ("rsvp_reminder", "fr"),
    ] {
        let (status, body) =
            meta_send(&client, &standins, &rsvp_send(name, language, rsvp_body())).await?;
        refusal(status, &body, 404, 132_001);
        assert_eq!(
            body["error"]["message"],
            "(#132001) Template name does not exist in the translation"
        );
        assert_eq!(
            body["error"]["error_data"]["details"],
            format!("template name ({name}) does not exist in {language}")
        );
    }

    // Paused, then disabled: re-registering replaces the template.
    standins.register(Accounts::new().meta_template(rsvp_template().with_status("PAUSED")));
    let (status, body) = meta_send(
        &client,
        &standins,
        &rsvp_send("rsvp_reminder", "en_US", rsvp_body()),
    )
    .await?;
    refusal(status, &body, 400, 132_015);
    standins.register(Accounts::new().meta_template(rsvp_template().with_status("DISABLED")));
    let (status, body) = meta_send(
        &client,
        &standins,
        &rsvp_send("rsvp_reminder", "en_US", rsvp_body()),
    )
    .await?;
    refusal(status, &body, 400, 132_016);
    standins.register(Accounts::new().meta_template(rsvp_template()));

    // Two body parameters for three placeholders.
    let mut two = rsvp_body();
    if let Some(parameters) = two.as_array_mut() {
        parameters.truncate(2);
    }
    let (status, body) = meta_send(
        &client,
        &standins,
        &rsvp_send("rsvp_reminder", "en_US", two),
    )
    .await?;
    refusal(status, &body, 400, 132_000);
    assert_eq!(
        body["error"]["error_data"]["details"],
        "body: number of localizable_params (2) does not match the expected number of params (3)"
    );

    // A currency without amount_1000.
    let mut currency = rsvp_body();
    currency[1]["currency"] = json!({ "fallback_value": "1,250.50 ZMW", "code": "ZMW" });
    let (status, body) = meta_send(
        &client,
        &standins,
        &rsvp_send("rsvp_reminder", "en_US", currency),
    )
    .await?;
    refusal(status, &body, 400, 132_012);
    assert_eq!(
        body["error"]["message"],
        "(#132012) Parameter format does not match format in the created template"
    );

    // The URL button's suffix left out.
    let mut no_button = rsvp_send("rsvp_reminder", "en_US", rsvp_body());
    if let Some(components) = no_button["template"]["components"].as_array_mut() {
        components.remove(2);
    }
    let (status, body) = meta_send(&client, &standins, &no_button).await?;
    refusal(status, &body, 400, 132_000);

    // A hostile body never gets further than Graph's own error.
    for hostile in [
        json!({ "messaging_product": "whatsapp", "to": CUSTOMER, "type": "template",
                "template": { "name": "rsvp_reminder", "language": { "code": "en_US" },
                              "components": "nope" } }),
        json!({ "messaging_product": "whatsapp", "to": CUSTOMER, "type": "template",
                "template": { "name": "rsvp_reminder", "language": { "code": "en_US" },
                              "components": [ { "type": "button", "index": "x" }, 7 ] } }),
    ] {
        let (status, body) = meta_send(&client, &standins, &hostile).await?;
        refusal(status, &body, 400, 100);
    }
    assert!(standins.sent_messages().is_empty());
    Ok(())
}

#[tokio::test]
async fn meta_free_form_needs_the_customer_service_window() -> anyhow::Result<()> {
    let (standins, client) = spawn().await?;
    let (status, body) = meta_send(&client, &standins, &free_form_text(CUSTOMER)).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"],
        json!({
            "message": "(#131047) Re-engagement message",
            "type": "OAuthException",
            "code": 131_047,
            "error_data": {
                "messaging_product": "whatsapp",
                "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
            },
            "fbtrace_id": body["error"]["fbtrace_id"],
        })
    );
    // Media too.
    let (status, body) = meta_send(
        &client,
        &standins,
        &json!({ "messaging_product": "whatsapp", "to": CUSTOMER, "type": "image",
                 "image": { "link": "https://cdn.example/a.jpg" } }),
    )
    .await?;
    assert_eq!(
        (status, &body["error"]["code"]),
        (StatusCode::BAD_REQUEST, &json!(131_047))
    );

    // A message 25 hours ago does not open it; one 23 hours ago does, for one more hour.
    let now = time::OffsetDateTime::now_utc();
    let old = standins
        .meta_inbound(
            MetaInbound::new(META_PHONE_ID, CUSTOMER, "hello?").at(now - time::Duration::hours(25)),
        )
        .await?;
    assert!(old.window_open_until < now);
    assert_eq!(old.webhook_status, None);
    let (status, _) = meta_send(&client, &standins, &free_form_text(CUSTOMER)).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let control = format!("{}/_standin/meta/inbound", standins.base_url());
    let at = now - time::Duration::hours(23);
    let (status, opened) = json_of(
        client
            .post(&control)
            .json(&json!({
                "phone_number_id": META_PHONE_ID,
                "from": CUSTOMER_WA_ID,
                "text": "Is it still on?",
                "at": at.format(&time::format_description::well_known::Rfc3339)?,
            }))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{opened}");
    assert_eq!(opened["webhook_status"], Value::Null);
    let until = time::OffsetDateTime::parse(
        opened["window_open_until"]
            .as_str()
            .context("window_open_until")?,
        &time::format_description::well_known::Rfc3339,
    )?;
    assert_eq!(until, at + crate::CUSTOMER_SERVICE_WINDOW);

    let (status, sent) = meta_send(&client, &standins, &free_form_text(CUSTOMER)).await?;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert!(sent["messages"][0].get("message_status").is_none());
    // The window is per customer and per business number.
    let (status, _) = meta_send(&client, &standins, &free_form_text("+260971234568")).await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The control API refuses what it cannot record.
    for (body, code) in [
        (
            json!({ "phone_number_id": "999", "from": CUSTOMER, "text": "x" }),
            "unknown_phone_number",
        ),
        (
            json!({ "phone_number_id": META_PHONE_ID, "from": "not-a-number", "text": "x" }),
            "invalid_address",
        ),
        (
            json!({ "phone_number_id": META_PHONE_ID, "from": CUSTOMER, "text": "x",
                    "webhook_url": "https://hooks.herald.example/meta" }),
            "remote_webhook_url",
        ),
        (
            json!({ "phone_number_id": META_PHONE_ID, "from": CUSTOMER, "text": "x", "bogus": 1 }),
            "invalid_body",
        ),
    ] {
        let response = client.post(&control).json(&body).send().await?;
        let (status, answer) = json_of(response).await?;
        assert!(status.is_client_error(), "{body}: {status}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
    }
    Ok(())
}

/// Meta's signature computed here, as a receiver checks it.
fn expected_hub_signature(secret: &str, body: &[u8]) -> anyhow::Result<String> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())?;
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(format!("sha256={hex}"))
}

#[tokio::test]
async fn meta_inbound_posts_a_signed_messages_webhook() -> anyhow::Result<()> {
    let (standins, client) = spawn().await?;
    let receiver = Receiver::start(0).await?;
    let webhook = format!("{}/webhooks/meta/whk_test", receiver.base_url);
    let at = time::macros::datetime!(2026-06-08 20:46:23 UTC);

    let outcome = standins
        .meta_inbound(
            MetaInbound::new(META_PHONE_ID, CUSTOMER, "Does it come in another color?")
                .at(at)
                .profile_name("Sheena Nelson")
                .webhook(&webhook, "app-secret-0001"),
        )
        .await?;
    assert_eq!(outcome.webhook_status, Some(200));
    assert_eq!(
        outcome.window_open_until,
        at + crate::CUSTOMER_SERVICE_WINDOW
    );

    let hits = receiver.hits();
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(hit.method, "POST");
    assert_eq!(hit.path_and_query, "/webhooks/meta/whk_test");
    assert_eq!(hit.header("content-type"), Some("application/json"));
    assert_eq!(
        hit.header("x-hub-signature-256"),
        Some(expected_hub_signature("app-secret-0001", &hit.body)?.as_str())
    );
    assert_ne!(
        hit.header("x-hub-signature-256"),
        Some(expected_hub_signature("another-secret", &hit.body)?.as_str())
    );
    let payload: Value = serde_json::from_slice(&hit.body)?;
    assert_eq!(
        payload,
        json!({
            "object": "whatsapp_business_account",
            "entry": [{
                "id": META_WABA_ID,
                "changes": [{
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": { "display_phone_number": "15550100000", "phone_number_id": META_PHONE_ID },
                        "contacts": [{ "profile": { "name": "Sheena Nelson" }, "wa_id": CUSTOMER_WA_ID }],
                        "messages": [{
                            "from": CUSTOMER_WA_ID,
                            "id": outcome.message_id,
                            "timestamp": "1780951583",
                            "type": "text",
                            "text": { "body": "Does it come in another color?" },
                        }],
                    },
                }],
            }],
        })
    );
    assert!(outcome.message_id.starts_with("wamid."));

    // Over the control API, with a receiver answering 500: reported, not retried.
    receiver.state.answer.store(500, Ordering::Relaxed);
    let (status, answer) = json_of(
        client
            .post(format!("{}/_standin/meta/inbound", standins.base_url()))
            .json(&json!({
                "phone_number_id": META_PHONE_ID,
                "from": CUSTOMER,
                "text": "hello",
                "webhook_url": webhook,
                "app_secret": "app-secret-0001",
            }))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["webhook_status"], 500);
    assert_eq!(receiver.hits().len(), 2);
    Ok(())
}

// --- Twilio Content API ----------------------------------------------------------------------

const OTHER_TWILIO_SID: &str = "AC00000000000000000000000000000002";
const OTHER_TWILIO_TOKEN: &str = "other-token";
const WHATSAPP_SENDER: &str = "whatsapp:+14155238886";
const WHATSAPP_CUSTOMER: &str = "whatsapp:+260971234567";

fn rsvp_content() -> TwilioContent {
    TwilioContent::new(TWILIO_SID, "rsvp_reminder", "Hi {{1}}, see you at {{2}}")
        .with_variables([("1", "Customer_Name"), ("2", "Event_Time")])
}

#[tokio::test]
async fn twilio_content_and_its_approval_request_are_fetched() -> anyhow::Result<()> {
    let content = rsvp_content();
    let pending = TwilioContent::new(TWILIO_SID, "promo", "Sale!")
        .with_approval_status("rejected")
        .with_approval_name("promo_v2")
        .with_category("MARKETING")
        .with_rejection_reason("Promotional content in a utility template")
        .with_language("fr");
    let standins = builder()
        .twilio_account(OTHER_TWILIO_SID, OTHER_TWILIO_TOKEN)
        .twilio_content(content.clone())
        .twilio_content(pending.clone())
        .build()
        .spawn()
        .await?;
    let client = reqwest::Client::new();
    let base = standins.twilio_content_base_url();
    assert_eq!(base, format!("{}/twilio-content", standins.base_url()));
    let url = format!("{base}/v1/Content/{}", content.sid());

    let (status, fetched) = json_of(
        client
            .get(&url)
            .basic_auth(TWILIO_SID, Some(TWILIO_TOKEN))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{fetched}");
    assert_eq!(fetched["sid"], content.sid());
    assert_eq!(fetched["account_sid"], TWILIO_SID);
    assert_eq!(fetched["friendly_name"], "rsvp_reminder");
    assert_eq!(fetched["language"], "en");
    assert_eq!(
        fetched["variables"],
        json!({ "1": "Customer_Name", "2": "Event_Time" })
    );
    assert_eq!(
        fetched["types"],
        json!({ "twilio/text": { "body": "Hi {{1}}, see you at {{2}}" } })
    );
    assert_eq!(fetched["url"], url);
    assert_eq!(
        fetched["links"],
        json!({
            "approval_fetch": format!("{url}/ApprovalRequests"),
            "approval_create": format!("{url}/ApprovalRequests/whatsapp"),
        })
    );
    let created = fetched["date_created"].as_str().context("date_created")?;
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");

    // An API key works as on the Messages API.
    let (status, approval) = json_of(
        client
            .get(format!("{url}/ApprovalRequests"))
            .basic_auth(TWILIO_KEY_SID, Some(TWILIO_KEY_SECRET))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        approval,
        json!({
            "account_sid": TWILIO_SID,
            "sid": content.sid(),
            "url": format!("{url}/ApprovalRequests"),
            "whatsapp": {
                "name": "rsvp_reminder",
                "category": "UTILITY",
                "content_type": "twilio/text",
                "status": "approved",
                "rejection_reason": "",
                "allow_category_change": true,
                "type": "whatsapp",
                "flows": null,
            },
        })
    );
    let (_, rejected) = json_of(
        client
            .get(format!(
                "{base}/v1/Content/{}/ApprovalRequests",
                pending.sid()
            ))
            .basic_auth(TWILIO_SID, Some(TWILIO_TOKEN))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(rejected["whatsapp"]["status"], "rejected");
    assert_eq!(rejected["whatsapp"]["name"], "promo_v2");
    assert_eq!(rejected["whatsapp"]["category"], "MARKETING");

    // Another account's content is not found; bad credentials are 401.
    let (status, body) = json_of(
        client
            .get(&url)
            .basic_auth(OTHER_TWILIO_SID, Some(OTHER_TWILIO_TOKEN))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], 20404);
    assert_eq!(body["status"], 404);
    let (status, body) = json_of(
        client
            .get(&url)
            .basic_auth(TWILIO_SID, Some("wrong"))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::UNAUTHORIZED, &json!(20003))
    );
    let (status, body) = json_of(
        client
            .get(format!("{base}/v1/Content/HXnope"))
            .basic_auth(TWILIO_SID, Some(TWILIO_TOKEN))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::NOT_FOUND, &json!(20404))
    );

    // Registered over the control API without a sid: one is generated and answered.
    let (status, registered) = json_of(
        client
            .post(format!("{}/_standin/accounts", standins.base_url()))
            .json(&json!({ "twilio_contents": [{
                "account_sid": TWILIO_SID, "friendly_name": "late",
                "types": { "twilio/text": { "body": "Late {{1}}" } } }] }))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(registered["registered"]["twilio_contents"], 1);
    let sid = registered["twilio_contents"][0]["sid"]
        .as_str()
        .context("generated sid")?;
    assert!(sid.starts_with("HX") && sid.len() == 34);
    let (status, _) = json_of(
        client
            .get(format!("{base}/v1/Content/{sid}"))
            .basic_auth(TWILIO_SID, Some(TWILIO_TOKEN))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK);
    // Content API requests are captured as Twilio's.
    assert!(
        standins
            .requests_for(Provider::Twilio)
            .iter()
            .any(|r| r.path == format!("/v1/Content/{sid}"))
    );
    Ok(())
}

#[tokio::test]
async fn twilio_content_sends_fill_the_body_and_check_the_sid() -> anyhow::Result<()> {
    let content = rsvp_content();
    let standins = builder()
        .twilio_content(content.clone())
        .build()
        .spawn()
        .await?;
    let client = reqwest::Client::new();

    // A template may start the conversation: no window needed, and no Body.
    let (status, message) = json_of(
        twilio_send(
            &client,
            &standins,
            &[
                ("To", WHATSAPP_CUSTOMER),
                ("From", WHATSAPP_SENDER),
                ("ContentSid", content.sid()),
                (
                    "ContentVariables",
                    r#"{"1":"Ada","2":"12 Dec 2026, 20:30"}"#,
                ),
            ],
        )
        .send()
        .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(message["body"], "Hi Ada, see you at 12 Dec 2026, 20:30");
    let sent = standins.sent_messages_for(Provider::Twilio);
    assert_eq!(
        sent[0].body.as_deref(),
        Some("Hi Ada, see you at 12 Dec 2026, 20:30")
    );
    assert_eq!(sent[0].template.as_deref(), Some(content.sid()));
    assert_eq!(sent[0].language.as_deref(), Some("en"));

    // Left-out variables take the content's defaults, as Twilio's do.
    twilio_send_ok(twilio_send(
        &client,
        &standins,
        &[
            ("To", WHATSAPP_CUSTOMER),
            ("From", WHATSAPP_SENDER),
            ("ContentSid", content.sid()),
            ("ContentVariables", r#"{"1":"Ada"}"#),
        ],
    ))
    .await?;
    assert_eq!(
        standins.sent_messages_for(Provider::Twilio)[1]
            .body
            .as_deref(),
        Some("Hi Ada, see you at Event_Time")
    );

    // Unknown (or another account's) content: 21655; variables not an object of strings: 21656.
    let unknown = TwilioContent::new(TWILIO_SID, "x", "y");
    for (sid, variables, code, message) in [
        (unknown.sid(), "{}", 21655, "The ContentSid is Invalid"),
        (
            content.sid(),
            r#"{"1": 5}"#,
            21656,
            "The ContentVariables Parameter is invalid",
        ),
        (
            content.sid(),
            "not json",
            21656,
            "The ContentVariables Parameter is invalid",
        ),
        (
            content.sid(),
            r#"["Ada"]"#,
            21656,
            "The ContentVariables Parameter is invalid",
        ),
    ] {
        let (status, body) = json_of(
            twilio_send(
                &client,
                &standins,
                &[
                    ("To", WHATSAPP_CUSTOMER),
                    ("From", WHATSAPP_SENDER),
                    ("ContentSid", sid),
                    ("ContentVariables", variables),
                ],
            )
            .send()
            .await?,
        )
        .await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{variables}: {body}");
        assert_eq!(
            body,
            json!({
                "code": code,
                "message": message,
                "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
                "status": 400,
            })
        );
    }
    assert_eq!(standins.sent_messages().len(), 2);
    Ok(())
}

#[tokio::test]
async fn twilio_whatsapp_failures_come_through_the_status_callback() -> anyhow::Result<()> {
    let approved = rsvp_content();
    let pending = rsvp_content()
        .with_sid(format!("HX{:032x}", 7))
        .with_approval_status("pending");
    let standins = builder()
        .status_callback_delay(CALLBACK_DELAY)
        .twilio_content(approved.clone())
        .twilio_content(pending.clone())
        .build()
        .spawn()
        .await?;
    let client = reqwest::Client::new();
    let receiver = Receiver::start(0).await?;
    let callback = format!("{}/receipts", receiver.base_url);
    let send = |form: Vec<(&'static str, String)>| {
        let mut form = form;
        form.push(("To", WHATSAPP_CUSTOMER.to_owned()));
        form.push(("From", WHATSAPP_SENDER.to_owned()));
        form.push(("StatusCallback", callback.clone()));
        twilio_send_ok(
            client
                .post(format!(
                    "{}/2010-04-01/Accounts/{TWILIO_SID}/Messages.json",
                    standins.twilio_base_url()
                ))
                .basic_auth(TWILIO_SID, Some(TWILIO_TOKEN))
                .form(&form),
        )
    };
    // A queued outcome is consumed but WhatsApp's refusal wins.
    standins.twilio_outcome_next(1, DeliveryOutcome::Undelivered { error_code: 30005 });

    let not_approved = send(vec![
        ("ContentSid", pending.sid().to_owned()),
        ("ContentVariables", r#"{"1":"Ada","2":"8pm"}"#.to_owned()),
    ])
    .await?;
    assert!(standins.pending_twilio_outcomes().is_empty());
    let extra_key = send(vec![
        ("ContentSid", approved.sid().to_owned()),
        (
            "ContentVariables",
            r#"{"1":"Ada","2":"8pm","3":"extra"}"#.to_owned(),
        ),
    ])
    .await?;
    let outside_window = send(vec![("Body", "Are you coming?".to_owned())]).await?;

    for (sid, code) in [
        (&not_approved, "63027"),
        (&extra_key, "63028"),
        (&outside_window, "63016"),
    ] {
        let attempts = wait_for_callbacks(&standins, sid, 1).await?;
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        assert_eq!(attempts[0].message_status, "failed");
        assert_eq!(attempts[0].field("ErrorCode"), Some(code));
        assert_eq!(attempts[0].field("ChannelPrefix"), Some("whatsapp"));
        assert!(attempts[0].succeeded());
    }
    // The fetched message shows the failure too.
    let (_, fetched) = json_of(
        client
            .get(format!(
                "{}/2010-04-01/Accounts/{TWILIO_SID}/Messages/{outside_window}.json",
                standins.twilio_base_url()
            ))
            .basic_auth(TWILIO_SID, Some(TWILIO_TOKEN))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(fetched["status"], "failed");
    assert_eq!(fetched["error_code"], 63016);

    // Once the customer writes, free-form text is delivered as usual.
    standins
        .twilio_inbound(TwilioInbound::new(
            TWILIO_SID,
            WHATSAPP_CUSTOMER,
            WHATSAPP_SENDER,
            "Yes!",
        ))
        .await?;
    let inside_window = send(vec![("Body", "Great, see you".to_owned())]).await?;
    let attempts = wait_for_callbacks(&standins, &inside_window, 2).await?;
    let statuses: Vec<&str> = attempts.iter().map(|a| a.message_status.as_str()).collect();
    assert_eq!(statuses, ["sent", "delivered"]);
    // SMS has no window.
    let sms = twilio_send_ok(twilio_send(
        &client,
        &standins,
        &[
            ("To", "+260971234567"),
            ("From", "+15005550006"),
            ("Body", "x"),
            ("StatusCallback", &callback),
        ],
    ))
    .await?;
    assert_eq!(wait_for_callbacks(&standins, &sms, 2).await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn twilio_inbound_webhook_is_signed_like_status_callbacks() -> anyhow::Result<()> {
    let (standins, client) = spawn().await?;
    let receiver = Receiver::start(0).await?;
    let webhook = format!("{}/webhooks/twilio/whk_in?cfg=1", receiver.base_url);
    let (status, answer) = json_of(
        client
            .post(format!("{}/_standin/twilio/inbound", standins.base_url()))
            .json(&json!({
                "account_sid": TWILIO_SID,
                "from": WHATSAPP_CUSTOMER,
                "to": WHATSAPP_SENDER,
                "body": "Count me in",
                "at": "2026-06-08T20:46:23Z",
                "webhook_url": webhook,
            }))
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["webhook_status"], 200);
    assert_eq!(answer["window_open_until"], "2026-06-09T20:46:23Z");

    let hits = receiver.hits();
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(hit.path_and_query, "/webhooks/twilio/whk_in?cfg=1");
    assert_eq!(
        hit.header("content-type"),
        Some("application/x-www-form-urlencoded; charset=utf-8")
    );
    assert_eq!(hit.header("user-agent"), Some("TwilioProxy/1.1"));
    assert_eq!(
        hit.header("x-twilio-signature"),
        Some(expected_signature(TWILIO_TOKEN, &webhook, &hit.body)?.as_str())
    );
    let sid = hit.field("MessageSid").context("MessageSid")?;
    assert!(sid.starts_with("SM") && sid.len() == 34);
    assert_eq!(answer["message_id"], sid);
    for (name, value) in [
        ("AccountSid", TWILIO_SID),
        ("From", WHATSAPP_CUSTOMER),
        ("To", WHATSAPP_SENDER),
        ("Body", "Count me in"),
        ("NumMedia", "0"),
        ("NumSegments", "1"),
        ("ProfileName", "Stand-in Customer"),
        ("WaId", "260971234567"),
        ("SmsStatus", "received"),
        ("ApiVersion", "2010-04-01"),
        ("ChannelPrefix", "whatsapp"),
        ("MessageType", "text"),
        ("SmsMessageSid", sid.as_str()),
    ] {
        assert_eq!(hit.field(name).as_deref(), Some(value), "{name}");
    }

    // Unknown accounts and non-WhatsApp addresses are refused.
    for (body, code) in [
        (
            json!({ "account_sid": OTHER_TWILIO_SID, "from": WHATSAPP_CUSTOMER,
                    "to": WHATSAPP_SENDER, "body": "x" }),
            "unknown_account",
        ),
        (
            json!({ "account_sid": TWILIO_SID, "from": "+260971234567",
                    "to": WHATSAPP_SENDER, "body": "x" }),
            "invalid_address",
        ),
    ] {
        let (status, answer) = json_of(
            client
                .post(format!("{}/_standin/twilio/inbound", standins.base_url()))
                .json(&body)
                .send()
                .await?,
        )
        .await?;
        assert!(status.is_client_error());
        assert_eq!(answer["error"]["code"], code);
    }
    Ok(())
}
