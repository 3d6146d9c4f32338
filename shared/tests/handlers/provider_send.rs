//! Sending through every provider, end to end over the network: the provider stand-ins (Twilio,
//! Africa's Talking, Brevo, Meta), a real SMTP server, the AWS emulator (SES, SNS), and small
//! scripted servers for the answers those cannot give (a provider's rarer error codes, AWS
//! throttling, an SMTP server refusing a mailbox). Every case checks what dispatch acts on:
//! accepted with the provider's id, or refused as retryable, permanent or provider-side.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use herald_shared::credentials::{CredentialVault, EnvelopeVault, LocalDataKeys, OpenCredentials};
use herald_shared::domain::provider::{CredentialInput, ProviderSettings, SmsType, SmtpSecurity};
use herald_shared::domain::validation::EmailAddress;
use herald_shared::domain::whatsapp::TemplateCall;
use herald_shared::domain::{ProviderId, TenantId};
use herald_shared::providers::{
    Accepted, ChannelSender, Outbound, ProviderClients, ProviderCost, ProviderEndpoints, SendError,
};
use provider_standins::{
    Fault, MetaInbound, MetaTemplate, Provider, RunningStandIns, StandIns, TwilioContent,
};
use secrecy::SecretString;
use serde_json::{Value, json};

const TWILIO_SID: &str = "AC5f1c2b7e9d0a4c3b8e6f7a1d2c3b4a59";
const TWILIO_TOKEN: &str = "tw-auth-token-0000-send-4d2f";
const TWILIO_FROM: &str = "+260211555010";
const AT_USERNAME: &str = "acme_gala";
const AT_KEY: &str = "atsk_send_0000000000000000a1b2";
const BREVO_KEY: &str = "xkeysib-send-0000000000000000beef";
const META_PHONE: &str = "106540352242922";
const META_TOKEN: &str = "EAAGm0PX4ZCpsBA-send-token-7731";
const META_OTHER_PHONE: &str = "106540352242923";
const META_OTHER_TOKEN: &str = "EAAGm0PX4ZCpsBA-other-token-0001";
const SMTP_USER: &str = "herald";
const SMTP_PASSWORD: &str = "smtp-pass-send-91c3";

const MESSAGE_ID: &str = "msg_01J9ZQ4X7S3M5V2K8D6F1H0TYR";
const PHONE: &str = "+15005550006";
const EMAIL: &str = "guest@example.com";
const CALLBACK: &str =
    "https://hooks.herald.example/receipts/twilio?m=msg_01J9ZQ4X7S3M5V2K8D6F1H0TYR";

// ----- The world the tests send into -------------------------------------------------------

async fn standins() -> RunningStandIns {
    StandIns::builder()
        .twilio_account(TWILIO_SID, TWILIO_TOKEN)
        .africastalking_account(AT_USERNAME, AT_KEY)
        .brevo_key(BREVO_KEY)
        .meta_phone_number(META_PHONE, META_TOKEN)
        .meta_phone_number(META_OTHER_PHONE, META_OTHER_TOKEN)
        .build()
        .spawn()
        .await
        .expect("stand-ins start")
}

fn endpoints(standins: &RunningStandIns) -> ProviderEndpoints {
    ProviderEndpoints {
        twilio: standins.twilio_base_url().to_owned(),
        africastalking: standins.africastalking_base_url().to_owned(),
        brevo: standins.brevo_base_url().to_owned(),
        meta_graph: standins.meta_graph_base_url().to_owned(),
        twilio_content: standins.twilio_content_base_url().to_owned(),
    }
}

/// Every provider base URL pointing at one server (a scripted one).
fn endpoints_at(base: &str) -> ProviderEndpoints {
    ProviderEndpoints {
        twilio: base.to_owned(),
        africastalking: base.to_owned(),
        brevo: base.to_owned(),
        meta_graph: base.to_owned(),
        twilio_content: base.to_owned(),
    }
}

/// SDK clients for `endpoint` with fixed credentials and no SDK retries, so each test sees
/// exactly one answer.
fn aws_clients(endpoint: &str, region: &str) -> (aws_sdk_sesv2::Client, aws_sdk_sns::Client) {
    let credentials =
        aws_sdk_sesv2::config::Credentials::new("testing", "testing", None, None, "tests");
    let ses = aws_sdk_sesv2::Config::builder()
        .behavior_version_latest()
        .endpoint_url(endpoint)
        .region(aws_sdk_sesv2::config::Region::new(region.to_owned()))
        .credentials_provider(credentials.clone())
        .retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled())
        .build();
    let sns = aws_sdk_sns::Config::builder()
        .behavior_version_latest()
        .endpoint_url(endpoint)
        .region(aws_sdk_sns::config::Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled())
        .build();
    (
        aws_sdk_sesv2::Client::from_conf(ses),
        aws_sdk_sns::Client::from_conf(sns),
    )
}

fn clients(http: reqwest::Client, endpoints: ProviderEndpoints, aws: &str) -> ProviderClients {
    let (ses, sns) = aws_clients(aws, "us-east-1");
    ProviderClients {
        http,
        endpoints,
        ses,
        sns,
    }
}

/// The production HTTP client (8 s timeout), AWS clients pointing nowhere useful.
fn http_clients(endpoints: ProviderEndpoints) -> ProviderClients {
    clients(
        herald_shared::providers::http_client(),
        endpoints,
        "http://127.0.0.1:9",
    )
}

/// A client that gives up after 300 ms, for the timeout cases.
fn impatient(endpoints: ProviderEndpoints) -> ProviderClients {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    clients(http, endpoints, "http://127.0.0.1:9")
}

/// Opened credentials, the way dispatch gets them: sealed, then opened by the vault.
async fn credentials(pairs: &[(&str, &str)]) -> OpenCredentials {
    let vault = EnvelopeVault::new(LocalDataKeys::random());
    let tenant = TenantId::parse("t-send").expect("tenant id");
    let provider = ProviderId::generate();
    let input = CredentialInput(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), SecretString::from((*v).to_owned())))
            .collect(),
    );
    let sealed = vault
        .seal(&tenant, &provider, &input)
        .await
        .expect("sealed");
    vault
        .open(&tenant, &provider, sealed.as_ref())
        .await
        .expect("opened")
}

fn sms(to: &str) -> Outbound<'_> {
    Outbound {
        message_id: MESSAGE_ID,
        to,
        subject: None,
        html: None,
        text: "Your seat at the Acme Gala is confirmed: table 12.",
        from_name: None,
        status_callback: None,
        list_unsubscribe: None,
        whatsapp_template: None,
    }
}

fn email(to: &str) -> Outbound<'_> {
    Outbound {
        message_id: MESSAGE_ID,
        to,
        subject: Some("Your invitation"),
        html: Some("<p>You are invited to the <b>Acme Gala</b>.</p>"),
        text: "You are invited to the Acme Gala.",
        from_name: Some("Acme Events"),
        status_callback: None,
        list_unsubscribe: None,
        whatsapp_template: None,
    }
}

fn address(s: &str) -> EmailAddress {
    EmailAddress::parse(s).expect("valid address")
}

fn twilio(from: &str) -> ProviderSettings {
    ProviderSettings::Twilio {
        account_sid: TWILIO_SID.into(),
        from: from.into(),
    }
}

fn africastalking() -> ProviderSettings {
    ProviderSettings::AfricasTalking {
        username: AT_USERNAME.into(),
        sender_id: Some("ACMEGALA".into()),
    }
}

fn brevo() -> ProviderSettings {
    ProviderSettings::Brevo {
        from_address: address("events@acme.example"),
        from_name: Some("Acme".into()),
    }
}

fn meta(phone_number_id: &str) -> ProviderSettings {
    ProviderSettings::MetaWhatsapp {
        phone_number_id: phone_number_id.into(),
        business_account_id: None,
    }
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn permanent(result: &Result<Accepted, SendError>) -> Option<&str> {
    match result {
        Err(SendError::Permanent { code, .. }) => Some(code),
        _ => None,
    }
}

fn provider_side(result: &Result<Accepted, SendError>) -> Option<&str> {
    match result {
        Err(SendError::Provider { code, .. }) => Some(code),
        _ => None,
    }
}

fn retryable(result: &Result<Accepted, SendError>) -> Option<Option<Duration>> {
    match result {
        Err(SendError::Retryable { retry_after, .. }) => Some(*retry_after),
        _ => None,
    }
}

// ----- Twilio -------------------------------------------------------------------------------

#[tokio::test]
async fn twilio_sms_is_accepted_with_its_sid_and_segments() {
    let standins = standins().await;
    let providers = http_clients(endpoints(&standins));
    let creds = credentials(&[("auth_token", TWILIO_TOKEN)]).await;
    let message = Outbound {
        status_callback: Some(CALLBACK),
        ..sms(PHONE)
    };
    let accepted = providers
        .send(&twilio(TWILIO_FROM), &creds, &message)
        .await
        .expect("accepted");
    assert!(accepted.provider_message_id.starts_with("SM"));
    assert_eq!(accepted.segments, Some(1));
    assert_eq!(
        accepted.cost, None,
        "the stand-in, like Twilio, prices later"
    );

    let requests = standins.requests_for(Provider::Twilio);
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        format!("/2010-04-01/Accounts/{TWILIO_SID}/Messages.json")
    );
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"));
    assert_eq!(
        request.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        form(&request.body),
        vec![
            ("To".to_owned(), PHONE.to_owned()),
            ("From".to_owned(), TWILIO_FROM.to_owned()),
            ("Body".to_owned(), message.text.to_owned()),
            ("StatusCallback".to_owned(), CALLBACK.to_owned()),
        ]
    );
    let sent = standins.sent_messages_for(Provider::Twilio);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].id, accepted.provider_message_id);
    assert_eq!(sent[0].to, PHONE);
}

#[tokio::test]
async fn twilio_whatsapp_and_messaging_services_address_the_message_as_twilio_documents() {
    let standins = standins().await;
    let providers = http_clients(endpoints(&standins));
    let creds = credentials(&[("auth_token", TWILIO_TOKEN)]).await;

    let whatsapp = format!("whatsapp:{TWILIO_FROM}");
    let accepted = providers
        .send(&twilio(&whatsapp), &creds, &sms(PHONE))
        .await
        .expect("WhatsApp accepted");
    assert!(accepted.provider_message_id.starts_with("SM"));

    let service = format!("MG{}", "a".repeat(32));
    let accepted = providers
        .send(&twilio(&service), &creds, &sms(PHONE))
        .await
        .expect("Messaging Service accepted");
    assert_eq!(
        accepted.segments, None,
        "a Messaging Service reports 0 segments at first"
    );

    let requests = standins.requests_for(Provider::Twilio);
    let fields: Vec<HashMap<String, String>> = requests
        .iter()
        .map(|r| form(&r.body).into_iter().collect())
        .collect();
    assert_eq!(fields[0]["To"], format!("whatsapp:{PHONE}"));
    assert_eq!(fields[0]["From"], whatsapp);
    assert_eq!(fields[1]["To"], PHONE);
    assert_eq!(fields[1]["MessagingServiceSid"], service);
    assert!(!fields[1].contains_key("From"));
    assert!(!fields[1].contains_key("StatusCallback"));
}

#[tokio::test]
async fn twilio_recipient_errors_are_permanent_and_sender_errors_are_the_providers() {
    let standins = standins().await;
    let providers = http_clients(endpoints(&standins));
    let creds = credentials(&[("auth_token", TWILIO_TOKEN)]).await;
    // Twilio's documented magic numbers.
    for (to, code) in [
        ("+15005550001", "21211"),
        ("+15005550002", "21612"),
        ("+15005550003", "21408"),
        ("+15005550004", "21610"),
        ("+15005550009", "21614"),
    ] {
        let result = providers.send(&twilio(TWILIO_FROM), &creds, &sms(to)).await;
        assert_eq!(permanent(&result), Some(code), "{to}: {result:?}");
        // Twilio's message names the number; Herald's reason never does.
        let shown = format!(
            "{:?} {}",
            result,
            result
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default()
        );
        assert!(!shown.contains(to), "{shown}");
    }
    for (from, code) in [("+15005550007", "21606"), ("+15005550001", "21212")] {
        let result = providers.send(&twilio(from), &creds, &sms(PHONE)).await;
        assert_eq!(provider_side(&result), Some(code), "{from}: {result:?}");
    }
    assert!(standins.sent_messages_for(Provider::Twilio).is_empty());
}

#[tokio::test]
async fn twilio_refusing_the_token_is_a_provider_error() {
    let standins = standins().await;
    let providers = http_clients(endpoints(&standins));
    let creds = credentials(&[("auth_token", "not-the-token-0000")]).await;
    let result = providers
        .send(&twilio(TWILIO_FROM), &creds, &sms(PHONE))
        .await;
    assert_eq!(provider_side(&result), Some("20003"), "{result:?}");
}

#[tokio::test]
async fn twilio_outages_throttling_and_timeouts_are_retryable() {
    let standins = standins().await;
    let creds = credentials(&[("auth_token", TWILIO_TOKEN)]).await;
    let providers = http_clients(endpoints(&standins));
    standins.fail_next(Provider::Twilio, 1, Fault::Status(503));
    standins.fail_next(Provider::Twilio, 1, Fault::Status(429));
    let outage = providers
        .send(&twilio(TWILIO_FROM), &creds, &sms(PHONE))
        .await;
    assert_eq!(retryable(&outage), Some(None), "{outage:?}");
    let throttled = providers
        .send(&twilio(TWILIO_FROM), &creds, &sms(PHONE))
        .await;
    assert_eq!(
        retryable(&throttled),
        Some(Some(Duration::from_secs(1))),
        "{throttled:?}"
    );

    standins.fail_next(Provider::Twilio, 1, Fault::Delay(Duration::from_secs(3)));
    let slow = impatient(endpoints(&standins))
        .send(&twilio(TWILIO_FROM), &creds, &sms(PHONE))
        .await;
    assert_eq!(retryable(&slow), Some(None), "{slow:?}");
}

// ----- Africa's Talking ---------------------------------------------------------------------

#[tokio::test]
async fn africastalking_is_accepted_with_its_id_and_cost() {
    let standins = standins().await;
    let providers = http_clients(endpoints(&standins));
    let creds = credentials(&[("api_key", AT_KEY)]).await;
    let to = "+254711000000";
    let accepted = providers
        .send(&africastalking(), &creds, &sms(to))
        .await
        .expect("accepted");
    assert!(accepted.provider_message_id.starts_with("ATXid_"));
    assert_eq!(
        accepted.cost,
        Some(ProviderCost {
            amount_micros: 800_000,
            currency: "KES".into()
        })
    );

    let requests = standins.requests_for(Provider::AfricasTalking);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/version1/messaging")
    );
    assert_eq!(request.header("apikey"), Some(AT_KEY));
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(
        form(&request.body),
        vec![
            ("username".to_owned(), AT_USERNAME.to_owned()),
            ("to".to_owned(), to.to_owned()),
            ("message".to_owned(), sms(to).text.to_owned()),
            ("from".to_owned(), "ACMEGALA".to_owned()),
        ]
    );
    assert_eq!(
        standins.sent_messages_for(Provider::AfricasTalking)[0].id,
        accepted.provider_message_id
    );
}

#[tokio::test]
async fn africastalking_refusals_are_classified_per_recipient() {
    let standins = standins().await;
    let providers = http_clients(endpoints(&standins));
    let creds = credentials(&[("api_key", AT_KEY)]).await;
    // E.164 allows seven digits; Africa's Talking answers 201 with a per-recipient 403.
    let result = providers
        .send(&africastalking(), &creds, &sms("+6834002"))
        .await;
    assert_eq!(permanent(&result), Some("InvalidPhoneNumber"), "{result:?}");

    let wrong = credentials(&[("api_key", "atsk_wrong_key_000000")]).await;
    let result = providers.send(&africastalking(), &wrong, &sms(PHONE)).await;
    assert_eq!(provider_side(&result), Some("http_401"), "{result:?}");

    // Answers the stand-in cannot give, in Africa's Talking's own shape.
    let entry = |code: u16, status: &str| {
        json!({"SMSMessageData": {"Message": "Sent to 0/1 Total Cost: 0", "Recipients": [
            {"statusCode": code, "number": PHONE, "status": status, "cost": "0", "messageId": "None"}
        ]}})
        .to_string()
    };
    let scripted = Scripted::start(vec![
        Reply::json(201, entry(406, "UserInBlacklist")),
        Reply::json(201, entry(401, "RiskHold")),
        Reply::json(201, entry(405, "InsufficientBalance")),
        Reply::json(201, entry(500, "InternalServerError")),
        Reply::json(
            201,
            json!({"SMSMessageData": {"Message": "InvalidSenderId", "Recipients": []}}).to_string(),
        ),
    ]);
    let providers = http_clients(endpoints_at(&scripted.url));
    let mut results = Vec::new();
    for _ in 0..5 {
        results.push(providers.send(&africastalking(), &creds, &sms(PHONE)).await);
    }
    assert_eq!(permanent(&results[0]), Some("UserInBlacklist"));
    assert_eq!(provider_side(&results[1]), Some("RiskHold"));
    assert_eq!(provider_side(&results[2]), Some("InsufficientBalance"));
    assert_eq!(retryable(&results[3]), Some(None));
    assert_eq!(provider_side(&results[4]), Some("InvalidSenderId"));
}

#[tokio::test]
async fn africastalking_outages_throttling_and_timeouts_are_retryable() {
    let standins = standins().await;
    let creds = credentials(&[("api_key", AT_KEY)]).await;
    let providers = http_clients(endpoints(&standins));
    standins.fail_next(Provider::AfricasTalking, 1, Fault::Status(503));
    standins.fail_next(Provider::AfricasTalking, 1, Fault::Status(429));
    let outage = providers.send(&africastalking(), &creds, &sms(PHONE)).await;
    assert_eq!(retryable(&outage), Some(None), "{outage:?}");
    let throttled = providers.send(&africastalking(), &creds, &sms(PHONE)).await;
    assert_eq!(retryable(&throttled), Some(Some(Duration::from_secs(1))));

    standins.fail_next(
        Provider::AfricasTalking,
        1,
        Fault::Delay(Duration::from_secs(3)),
    );
    let slow = impatient(endpoints(&standins))
        .send(&africastalking(), &creds, &sms(PHONE))
        .await;
    assert_eq!(retryable(&slow), Some(None), "{slow:?}");
}

// ----- Brevo --------------------------------------------------------------------------------

#[tokio::test]
async fn brevo_is_accepted_with_its_message_id() {
    let standins = standins().await;
    let providers = http_clients(endpoints(&standins));
    let creds = credentials(&[("api_key", BREVO_KEY)]).await;
    let message = email(EMAIL);
    let accepted = providers
        .send(&brevo(), &creds, &message)
        .await
        .expect("accepted");
    assert!(accepted.provider_message_id.starts_with('<'));

    let requests = standins.requests_for(Provider::Brevo);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v3/smtp/email")
    );
    assert_eq!(request.header("api-key"), Some(BREVO_KEY));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.body_json().expect("JSON body"),
        json!({
            // The brand's name wins over the configuration's.
            "sender": {"name": "Acme Events", "email": "events@acme.example"},
            "to": [{"email": EMAIL}],
            "subject": "Your invitation",
            "htmlContent": message.html,
            "textContent": message.text,
            "headers": {"X-Herald-Message-Id": MESSAGE_ID, "X-Mailin-custom": MESSAGE_ID},
        })
    );
    let sent = standins.sent_messages_for(Provider::Brevo);
    assert_eq!(sent[0].id, accepted.provider_message_id);
}

#[tokio::test]
async fn brevo_refusals_are_classified() {
    let standins = standins().await;
    let providers = http_clients(endpoints(&standins));
    let creds = credentials(&[("api_key", BREVO_KEY)]).await;

    // Brevo's own check: a domain without a dot is refused as invalid_parameter.
    let result = providers
        .send(&brevo(), &creds, &email("guest@localhost"))
        .await;
    assert_eq!(permanent(&result), Some("invalid_parameter"), "{result:?}");

    // Herald's own check: nothing reaches Brevo.
    let before = standins.requests_for(Provider::Brevo).len();
    let result = providers
        .send(&brevo(), &creds, &email("not an address"))
        .await;
    assert_eq!(permanent(&result), Some("invalid_recipient"));
    assert_eq!(standins.requests_for(Provider::Brevo).len(), before);

    let wrong = credentials(&[("api_key", "xkeysib-wrong-0000")]).await;
    let result = providers.send(&brevo(), &wrong, &email(EMAIL)).await;
    assert_eq!(provider_side(&result), Some("unauthorized"), "{result:?}");

    standins.fail_next(Provider::Brevo, 1, Fault::Status(429));
    standins.fail_next(Provider::Brevo, 1, Fault::Status(503));
    let throttled = providers.send(&brevo(), &creds, &email(EMAIL)).await;
    assert_eq!(retryable(&throttled), Some(Some(Duration::from_secs(1))));
    let outage = providers.send(&brevo(), &creds, &email(EMAIL)).await;
    assert_eq!(retryable(&outage), Some(None), "{outage:?}");

    standins.fail_next(Provider::Brevo, 1, Fault::Delay(Duration::from_secs(3)));
    let slow = impatient(endpoints(&standins))
        .send(&brevo(), &creds, &email(EMAIL))
        .await;
    assert_eq!(retryable(&slow), Some(None), "{slow:?}");
}

#[tokio::test]
async fn brevo_rate_limit_reset_is_the_hint_without_retry_after() {
    let scripted = Scripted::start(vec![
        Reply::json(
            429,
            json!({"code": "too_many_requests", "message": "Too many requests"}).to_string(),
        )
        .header("x-sib-ratelimit-reset", "7"),
    ]);
    let providers = http_clients(endpoints_at(&scripted.url));
    let creds = credentials(&[("api_key", BREVO_KEY)]).await;
    let result = providers.send(&brevo(), &creds, &email(EMAIL)).await;
    assert_eq!(retryable(&result), Some(Some(Duration::from_secs(7))));
}

// ----- Meta WhatsApp Cloud ------------------------------------------------------------------

#[tokio::test]
async fn meta_is_accepted_with_its_wamid() {
    let standins = standins().await;
    let providers = http_clients(endpoints(&standins));
    let creds = credentials(&[
        ("access_token", META_TOKEN),
        ("app_secret", "app-secret-0001"),
    ])
    .await;
    let message = sms("+260971234567");
    // Free-form text only inside the window the recipient's own message opened.
    let refused = providers.send(&meta(META_PHONE), &creds, &message).await;
    assert!(
        matches!(&refused, Err(SendError::Permanent { code, .. }) if code == "131047"),
        "{refused:?}"
    );
    standins
        .meta_inbound(MetaInbound::new(META_PHONE, "+260971234567", "hi"))
        .await
        .expect("inbound");
    standins.clear_journal();
    let accepted = providers
        .send(&meta(META_PHONE), &creds, &message)
        .await
        .expect("accepted");
    assert!(accepted.provider_message_id.starts_with("wamid."));

    let requests = standins.requests_for(Provider::Meta);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/v21.0/{META_PHONE}/messages"));
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {META_TOKEN}").as_str())
    );
    assert_eq!(
        request.body_json().expect("JSON body"),
        json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "260971234567",
            "type": "text",
            "text": {"body": message.text, "preview_url": false},
            "biz_opaque_callback_data": MESSAGE_ID,
        })
    );
}

/// The invitation as both providers registered it, and its parameters for Ada.
fn invitation() -> TemplateCall {
    serde_json::from_value(json!({
        "meta": {"name": "gala_invitation", "language": "en_US", "components": [
            {"type": "body", "parameters": [
                {"type": "text", "text": "Ada"},
                {"type": "currency", "currency": {"fallback_value": "ZMW 1,250.50", "code": "ZMW", "amount_1000": 1_250_500}}
            ]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "tok_8f2c"}]}
        ]},
        "twilio": {"content_sid": GALA_CONTENT_SID, "variables": {"1": "Ada", "2": "ZMW 1,250.50"}}
    }))
    .expect("a template call")
}

const GALA_WABA: &str = "102290129340398";
const GALA_CONTENT_SID: &str = "HXb5b62575e6e4ff6129ad7c8efe1f983e";

async fn standins_with_templates(meta_status: &str, twilio_status: &str) -> RunningStandIns {
    let components = vec![
        json!({"type": "BODY", "text": "Dear {{1}}, your seat at the Acme Gala is held: {{2}}."}),
        json!({"type": "BUTTONS", "buttons": [{"type": "URL", "text": "RSVP", "url": "https://rsvp.acme.example/{{1}}"}]}),
    ];
    StandIns::builder()
        .twilio_account(TWILIO_SID, TWILIO_TOKEN)
        .twilio_content(
            TwilioContent::new(
                TWILIO_SID,
                "gala_invitation",
                "Dear {{1}}, your seat is held: {{2}}.",
            )
            .with_sid(GALA_CONTENT_SID)
            .with_variables([("1", "Guest"), ("2", "ZMW 0")])
            .with_approval_status(twilio_status),
        )
        .meta_business_phone_number(GALA_WABA, META_PHONE, META_TOKEN)
        .meta_template(
            MetaTemplate::new(GALA_WABA, "gala_invitation", "en_US", components)
                .with_status(meta_status),
        )
        .build()
        .spawn()
        .await
        .expect("stand-ins start")
}

#[tokio::test]
async fn meta_sends_a_registered_template_with_its_components() {
    let standins = standins_with_templates("APPROVED", "approved").await;
    let providers = http_clients(endpoints(&standins));
    let creds = credentials(&[("access_token", META_TOKEN)]).await;
    let call = invitation();
    let mut message = sms("+260971234567");
    message.whatsapp_template = Some(&call);
    let accepted = providers
        .send(&meta(META_PHONE), &creds, &message)
        .await
        .expect("a template goes outside the window");
    assert!(accepted.provider_message_id.starts_with("wamid."));
    let body = standins.requests_for(Provider::Meta)[0]
        .body_json()
        .expect("JSON body");
    assert_eq!(body["type"], "template");
    assert_eq!(body["template"]["name"], "gala_invitation");
    assert_eq!(body["template"]["language"]["code"], "en_US");
    assert_eq!(
        body["template"]["components"],
        serde_json::to_value(&call.meta.as_ref().expect("meta").components).expect("json")
    );
    let sent = standins.sent_messages_for(Provider::Meta);
    assert_eq!(
        sent[0].body.as_deref(),
        Some("Dear Ada, your seat at the Acme Gala is held: ZMW 1,250.50.")
    );

    // A paused template is refused for good, with Meta's code.
    let paused = standins_with_templates("PAUSED", "approved").await;
    let providers = http_clients(endpoints(&paused));
    let refused = providers.send(&meta(META_PHONE), &creds, &message).await;
    assert!(
        matches!(&refused, Err(SendError::Permanent { code, .. }) if code == "132015"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn twilio_sends_a_content_template_with_every_variable() {
    let standins = standins_with_templates("APPROVED", "approved").await;
    let providers = http_clients(endpoints(&standins));
    let creds = credentials(&[("auth_token", TWILIO_TOKEN)]).await;
    let call = invitation();
    let mut message = sms("whatsapp:+260971234567");
    message.whatsapp_template = Some(&call);
    providers
        .send(&twilio("whatsapp:+15005550006"), &creds, &message)
        .await
        .expect("accepted");
    let fields = form(&standins.requests_for(Provider::Twilio)[0].body);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(field("ContentSid").as_deref(), Some(GALA_CONTENT_SID));
    assert_eq!(field("Body"), None);
    let variables: Value =
        serde_json::from_str(&field("ContentVariables").expect("variables")).expect("JSON");
    assert_eq!(variables, json!({"1": "Ada", "2": "ZMW 1,250.50"}));
    let sent = standins.sent_messages_for(Provider::Twilio);
    assert_eq!(
        sent[0].body.as_deref(),
        Some("Dear Ada, your seat is held: ZMW 1,250.50.")
    );
}

#[tokio::test]
async fn meta_refusals_are_classified() {
    let standins = standins().await;
    let providers = http_clients(endpoints(&standins));
    let creds = credentials(&[("access_token", META_TOKEN)]).await;

    let wrong = credentials(&[("access_token", "EAAG-not-a-token")]).await;
    let result = providers.send(&meta(META_PHONE), &wrong, &sms(PHONE)).await;
    assert_eq!(provider_side(&result), Some("190"), "{result:?}");

    // A real token, but for another business number: Graph 100, subcode 33.
    let other = credentials(&[("access_token", META_OTHER_TOKEN)]).await;
    let result = providers.send(&meta(META_PHONE), &other, &sms(PHONE)).await;
    assert_eq!(provider_side(&result), Some("100"), "{result:?}");

    let result = providers
        .send(&meta(META_PHONE), &creds, &sms("+0123"))
        .await;
    assert_eq!(permanent(&result), Some("invalid_recipient"));

    standins.fail_next(Provider::Meta, 1, Fault::Status(503));
    standins.fail_next(Provider::Meta, 1, Fault::Status(429));
    let outage = providers.send(&meta(META_PHONE), &creds, &sms(PHONE)).await;
    assert_eq!(retryable(&outage), Some(None), "{outage:?}");
    let throttled = providers.send(&meta(META_PHONE), &creds, &sms(PHONE)).await;
    assert_eq!(retryable(&throttled), Some(Some(Duration::from_secs(1))));

    standins.fail_next(Provider::Meta, 1, Fault::Delay(Duration::from_secs(3)));
    let slow = impatient(endpoints(&standins))
        .send(&meta(META_PHONE), &creds, &sms(PHONE))
        .await;
    assert_eq!(retryable(&slow), Some(None), "{slow:?}");

    // Cloud API codes the stand-in does not produce, in Graph's error shape.
    let graph = |code: u32, details: &str| {
        json!({"error": {"message": format!("(#{code}) error"), "type": "OAuthException", "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details}, "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}})
        .to_string()
    };
    let scripted = Scripted::start(vec![
        Reply::json(400, graph(131026, "Message Undeliverable.")),
        Reply::json(
            400,
            graph(
                131048,
                "Message failed to send because there are restrictions.",
            ),
        ),
        Reply::json(400, graph(131056, "Too many messages to this recipient.")),
    ]);
    let providers = http_clients(endpoints_at(&scripted.url));
    let undeliverable = providers.send(&meta(META_PHONE), &creds, &sms(PHONE)).await;
    assert_eq!(permanent(&undeliverable), Some("131026"));
    for _ in 0..2 {
        let limited = providers.send(&meta(META_PHONE), &creds, &sms(PHONE)).await;
        assert_eq!(retryable(&limited), Some(None), "{limited:?}");
    }
}

// ----- Amazon SES ---------------------------------------------------------------------------

#[tokio::test]
async fn ses_sends_from_a_verified_identity_and_refuses_an_unverified_one() {
    let stack = emulator();
    let (ses, sns) = aws_clients(&stack.endpoint, &stack.region);
    let domain = format!("{}.example", ulid::Ulid::new().to_string().to_lowercase());
    ses.create_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .expect("identity created");
    let providers = ProviderClients {
        http: herald_shared::providers::http_client(),
        endpoints: endpoints_at("http://127.0.0.1:9"),
        ses,
        sns,
    };
    let settings = |from: &str| ProviderSettings::Ses {
        from_address: address(from),
        from_name: Some("Acme".into()),
        configuration_set: None,
        events_topic_arn: None,
    };
    let creds = OpenCredentials::default();
    let accepted = providers
        .send(
            &settings(&format!("events@{domain}")),
            &creds,
            &email(EMAIL),
        )
        .await
        .expect("accepted");
    assert!(!accepted.provider_message_id.is_empty());

    let result = providers
        .send(
            &settings("events@unverified.example"),
            &creds,
            &email(EMAIL),
        )
        .await;
    assert_eq!(
        provider_side(&result),
        Some("MessageRejected"),
        "{result:?}"
    );
}

#[tokio::test]
async fn ses_request_carries_the_sender_bodies_tag_and_configuration_set() {
    let scripted = Scripted::start(vec![Reply::json(
        200,
        json!({"MessageId": "0100018f-ses-canned"}).to_string(),
    )]);
    let providers = clients(
        herald_shared::providers::http_client(),
        endpoints_at("http://127.0.0.1:9"),
        &scripted.url,
    );
    let settings = ProviderSettings::Ses {
        from_address: address("events@acme.example"),
        from_name: None,
        configuration_set: Some("herald-events".into()),
        events_topic_arn: None,
    };
    let message = email(EMAIL);
    let accepted = providers
        .send(&settings, &OpenCredentials::default(), &message)
        .await
        .expect("accepted");
    assert_eq!(accepted.provider_message_id, "0100018f-ses-canned");

    let requests = scripted.requests();
    assert_eq!(requests[0].line, "POST /v2/email/outbound-emails HTTP/1.1");
    let body: Value = serde_json::from_slice(&requests[0].body).expect("JSON body");
    assert_eq!(
        body,
        json!({
            "FromEmailAddress": "Acme Events <events@acme.example>",
            "Destination": {"ToAddresses": [EMAIL]},
            "Content": {"Simple": {
                "Subject": {"Data": "Your invitation", "Charset": "UTF-8"},
                "Body": {
                    "Text": {"Data": message.text, "Charset": "UTF-8"},
                    "Html": {"Data": message.html, "Charset": "UTF-8"},
                },
                "Headers": [{"Name": "X-Herald-Message-Id", "Value": MESSAGE_ID}],
            }},
            "EmailTags": [{"Name": "herald_message_id", "Value": MESSAGE_ID}],
            "ConfigurationSetName": "herald-events",
        })
    );
}

#[tokio::test]
async fn ses_refusals_are_classified() {
    let error = |status: u16, code: &str, message: &str| {
        Reply::json(status, json!({"message": message}).to_string())
            .header("x-amzn-ErrorType", code)
    };
    let scripted = Scripted::start(vec![
        error(
            429,
            "TooManyRequestsException",
            "Maximum sending rate exceeded.",
        ),
        error(503, "ServiceUnavailable", "Service unavailable"),
        error(400, "AccountSuspendedException", "Account suspended"),
        error(
            400,
            "MailFromDomainNotVerifiedException",
            "MAIL FROM domain not verified",
        ),
        error(400, "BadRequestException", "Illegal address"),
        error(
            403,
            "AccessDeniedException",
            "not authorized to perform ses:SendEmail",
        ),
    ]);
    let providers = clients(
        herald_shared::providers::http_client(),
        endpoints_at("http://127.0.0.1:9"),
        &scripted.url,
    );
    let settings = ProviderSettings::Ses {
        from_address: address("events@acme.example"),
        from_name: None,
        configuration_set: None,
        events_topic_arn: None,
    };
    let creds = OpenCredentials::default();
    let mut results = Vec::new();
    for _ in 0..6 {
        results.push(providers.send(&settings, &creds, &email(EMAIL)).await);
    }
    assert_eq!(retryable(&results[0]), Some(None), "{:?}", results[0]);
    assert_eq!(retryable(&results[1]), Some(None), "{:?}", results[1]);
    assert_eq!(
        provider_side(&results[2]),
        Some("AccountSuspendedException")
    );
    assert_eq!(
        provider_side(&results[3]),
        Some("MailFromDomainNotVerifiedException")
    );
    assert_eq!(permanent(&results[4]), Some("BadRequestException"));
    assert_eq!(provider_side(&results[5]), Some("AccessDeniedException"));

    // Nobody listening: the network's fault.
    let gone = clients(
        herald_shared::providers::http_client(),
        endpoints_at("http://127.0.0.1:9"),
        "http://127.0.0.1:9",
    )
    .send(&settings, &creds, &email(EMAIL))
    .await;
    assert_eq!(retryable(&gone), Some(None), "{gone:?}");
}

// ----- Amazon SNS ---------------------------------------------------------------------------

#[tokio::test]
async fn sns_publishes_to_the_number_and_refuses_an_oversized_message() {
    let stack = emulator();
    let (ses, sns) = aws_clients(&stack.endpoint, &stack.region);
    let providers = ProviderClients {
        http: herald_shared::providers::http_client(),
        endpoints: endpoints_at("http://127.0.0.1:9"),
        ses,
        sns,
    };
    let settings = ProviderSettings::Sns {
        sender_id: Some("ACMEGALA".into()),
        sms_type: SmsType::Transactional,
    };
    let creds = OpenCredentials::default();
    let accepted = providers
        .send(&settings, &creds, &sms(PHONE))
        .await
        .expect("accepted");
    assert!(!accepted.provider_message_id.is_empty());

    let long = "x".repeat(1700);
    let result = providers
        .send(
            &settings,
            &creds,
            &Outbound {
                text: &long,
                ..sms(PHONE)
            },
        )
        .await;
    assert_eq!(permanent(&result), Some("InvalidParameter"), "{result:?}");
}

#[tokio::test]
async fn sns_request_carries_the_number_and_sms_attributes() {
    let scripted = Scripted::start(vec![Reply::xml(200, sns_published("5f1c2b7e-canned"))]);
    let providers = clients(
        herald_shared::providers::http_client(),
        endpoints_at("http://127.0.0.1:9"),
        &scripted.url,
    );
    let settings = ProviderSettings::Sns {
        sender_id: Some("ACMEGALA".into()),
        sms_type: SmsType::Promotional,
    };
    let accepted = providers
        .send(&settings, &OpenCredentials::default(), &sms(PHONE))
        .await
        .expect("accepted");
    assert_eq!(accepted.provider_message_id, "5f1c2b7e-canned");

    let requests = scripted.requests();
    let fields: HashMap<String, String> = form(&requests[0].body).into_iter().collect();
    assert_eq!(fields["Action"], "Publish");
    assert_eq!(fields["PhoneNumber"], PHONE);
    assert_eq!(fields["Message"], sms(PHONE).text);
    let attributes: HashMap<&str, (&str, &str)> = (1..=2)
        .map(|i| {
            let key = |s: &str| format!("MessageAttributes.entry.{i}.{s}");
            (
                fields[&key("Name")].as_str(),
                (
                    fields[&key("Value.DataType")].as_str(),
                    fields[&key("Value.StringValue")].as_str(),
                ),
            )
        })
        .collect();
    assert_eq!(
        attributes,
        HashMap::from([
            ("AWS.SNS.SMS.SMSType", ("String", "Promotional")),
            ("AWS.SNS.SMS.SenderID", ("String", "ACMEGALA")),
        ])
    );
}

#[tokio::test]
async fn sns_refusals_are_classified() {
    let error = |status: u16, code: &str| {
        Reply::xml(
            status,
            format!(
                r#"<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>{code}</Code><Message>{code}</Message></Error><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ErrorResponse>"#
            ),
        )
    };
    let scripted = Scripted::start(vec![
        error(429, "Throttled"),
        error(500, "InternalError"),
        error(403, "AuthorizationError"),
        error(400, "InvalidParameter"),
    ]);
    let providers = clients(
        herald_shared::providers::http_client(),
        endpoints_at("http://127.0.0.1:9"),
        &scripted.url,
    );
    let settings = ProviderSettings::Sns {
        sender_id: None,
        sms_type: SmsType::Transactional,
    };
    let creds = OpenCredentials::default();
    let mut results = Vec::new();
    for _ in 0..4 {
        results.push(providers.send(&settings, &creds, &sms(PHONE)).await);
    }
    assert_eq!(retryable(&results[0]), Some(None), "{:?}", results[0]);
    assert_eq!(retryable(&results[1]), Some(None), "{:?}", results[1]);
    assert_eq!(provider_side(&results[2]), Some("AuthorizationError"));
    assert_eq!(permanent(&results[3]), Some("InvalidParameter"));

    let result = providers
        .send(&settings, &creds, &sms("260971234567"))
        .await;
    assert_eq!(permanent(&result), Some("invalid_recipient"));
}

// ----- SMTP ---------------------------------------------------------------------------------

fn smtp_settings(port: u16) -> ProviderSettings {
    ProviderSettings::Smtp {
        host: "127.0.0.1".into(),
        port,
        security: SmtpSecurity::None,
        username: SMTP_USER.into(),
        from_address: address("events@acme.example"),
        from_name: None,
    }
}

#[tokio::test]
async fn smtp_delivers_a_multipart_message_with_herald_ids() {
    let server = smtp();
    let providers = http_clients(endpoints_at("http://127.0.0.1:9"));
    let creds = credentials(&[("password", SMTP_PASSWORD)]).await;
    let message_id = format!("msg_{}", ulid::Ulid::new());
    let message = Outbound {
        message_id: &message_id,
        ..email(EMAIL)
    };
    let accepted = providers
        .send(&smtp_settings(server.port), &creds, &message)
        .await
        .expect("accepted");
    assert_eq!(
        accepted.provider_message_id,
        format!("<{message_id}@acme.example>")
    );

    let spooled = spooled(server, &accepted.provider_message_id);
    assert_eq!(spooled["auth_user"], SMTP_USER);
    assert_eq!(spooled["mail_from"], "events@acme.example");
    assert_eq!(spooled["rcpt_tos"], json!([EMAIL]));
    let data = spooled["data"].as_str().expect("data");
    for expected in [
        format!("Message-ID: <{message_id}@acme.example>"),
        format!("X-Herald-Message-Id: {message_id}"),
        "From: \"Acme Events\" <events@acme.example>".to_owned(),
        "Subject: Your invitation".to_owned(),
        "Content-Type: multipart/alternative".to_owned(),
        "Content-Type: text/plain; charset=utf-8".to_owned(),
        "Content-Type: text/html; charset=utf-8".to_owned(),
    ] {
        assert!(data.contains(&expected), "{expected} missing from:\n{data}");
    }
}

#[tokio::test]
async fn smtp_refusals_are_classified() {
    let providers = http_clients(endpoints_at("http://127.0.0.1:9"));

    let wrong = credentials(&[("password", "not-the-password")]).await;
    let result = providers
        .send(&smtp_settings(smtp().port), &wrong, &email(EMAIL))
        .await;
    assert_eq!(provider_side(&result), Some("535"), "{result:?}");

    // The real server with a full spool answers 452 to DATA.
    let creds = credentials(&[("password", SMTP_PASSWORD)]).await;
    let result = providers
        .send(&smtp_settings(full_smtp().port), &creds, &email(EMAIL))
        .await;
    assert_eq!(retryable(&result), Some(None), "{result:?}");

    // A server that refuses the mailbox at RCPT.
    let refusing = ScriptedSmtp::start(
        "550 5.1.1 <guest@example.com>: Recipient address rejected: User unknown",
    );
    let result = providers
        .send(&smtp_settings(refusing.port), &creds, &email(EMAIL))
        .await;
    assert_eq!(permanent(&result), Some("550"), "{result:?}");

    // Nobody listening.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let result = providers
        .send(&smtp_settings(port), &creds, &email(EMAIL))
        .await;
    assert_eq!(retryable(&result), Some(None), "{result:?}");
}

#[tokio::test]
async fn smtp_server_that_never_answers_is_retryable() {
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        // Accept, then say nothing until the test process ends.
        let held: Vec<TcpStream> = silent.incoming().take(1).filter_map(Result::ok).collect();
        std::thread::sleep(Duration::from_secs(30));
        drop(held);
    });
    let providers = http_clients(endpoints_at("http://127.0.0.1:9"));
    let creds = credentials(&[("password", SMTP_PASSWORD)]).await;
    let started = std::time::Instant::now();
    let result = providers
        .send(&smtp_settings(port), &creds, &email(EMAIL))
        .await;
    assert_eq!(retryable(&result), Some(None), "{result:?}");
    assert!(
        started.elapsed() < Duration::from_secs(11),
        "bounded by the send timeout"
    );
}

// ----- Local checks that need no provider ---------------------------------------------------

#[tokio::test]
async fn missing_credentials_and_empty_messages_never_leave_herald() {
    let standins = standins().await;
    let providers = http_clients(endpoints(&standins));
    let none = OpenCredentials::default();
    let result = providers
        .send(&twilio(TWILIO_FROM), &none, &sms(PHONE))
        .await;
    assert_eq!(provider_side(&result), Some("missing_credentials"));

    let creds = credentials(&[("auth_token", TWILIO_TOKEN)]).await;
    let empty = Outbound {
        text: "  ",
        ..sms(PHONE)
    };
    let result = providers.send(&twilio(TWILIO_FROM), &creds, &empty).await;
    assert_eq!(permanent(&result), Some("empty_message"));
    assert!(standins.requests().is_empty());

    let shown = format!("{:?}", email(EMAIL));
    assert!(
        !shown.contains(EMAIL) && !shown.contains("Acme Gala"),
        "{shown}"
    );
}

// ----- Servers the tests start --------------------------------------------------------------

/// The AWS emulator, provisioned from the SAM template once per test process (as the
/// integration tests do); it exits with this process.
struct Emulator {
    endpoint: String,
    region: String,
}

fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| {
        let stack = local_stack::Stack::start().expect("the local stack starts");
        Emulator {
            region: stack
                .var("AWS_REGION")
                .unwrap_or_else(|_| "eu-west-1".into()),
            endpoint: stack.endpoint,
        }
    })
}

/// The spooled message whose data carries `message_id`.
fn spooled(server: &local_stack::SmtpServer, message_id: &str) -> Value {
    server
        .spooled()
        .into_iter()
        .find(|m| m["data"].as_str().is_some_and(|d| d.contains(message_id)))
        .expect("the message was spooled")
}

/// A real SMTP server (aiosmtpd) with AUTH, once per test process.
fn smtp() -> &'static local_stack::SmtpServer {
    static SMTP: OnceLock<local_stack::SmtpServer> = OnceLock::new();
    SMTP.get_or_init(|| {
        local_stack::SmtpServer::start(SMTP_USER, SMTP_PASSWORD, &[])
            .expect("the SMTP server starts")
    })
}

/// The same server with a spool too small for any message: it refuses with 452.
fn full_smtp() -> &'static local_stack::SmtpServer {
    static SMTP: OnceLock<local_stack::SmtpServer> = OnceLock::new();
    SMTP.get_or_init(|| {
        local_stack::SmtpServer::start(SMTP_USER, SMTP_PASSWORD, &["--max-spool-bytes", "1"])
            .expect("the SMTP server starts")
    })
}

/// An SMTP server that accepts everything up to RCPT and answers it with `rcpt_reply`.
struct ScriptedSmtp {
    port: u16,
}

impl ScriptedSmtp {
    fn start(rcpt_reply: &'static str) -> ScriptedSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            let Some(Ok(stream)) = listener.incoming().next() else {
                return;
            };
            let mut writer = stream.try_clone().expect("clone");
            let mut reader = BufReader::new(stream);
            let mut say = |line: &str| {
                let _ = writer.write_all(format!("{line}\r\n").as_bytes());
            };
            say("220 scripted.example ESMTP");
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                let command = line.trim().to_ascii_uppercase();
                if command.starts_with("EHLO") {
                    say("250-scripted.example\r\n250 AUTH PLAIN LOGIN");
                } else if command.starts_with("AUTH") {
                    say("235 2.7.0 Authentication successful");
                } else if command.starts_with("RCPT") {
                    say(rcpt_reply);
                } else if command.starts_with("QUIT") {
                    say("221 2.0.0 Bye");
                    break;
                } else {
                    say("250 2.0.0 OK");
                }
                line.clear();
            }
        });
        ScriptedSmtp { port }
    }
}

/// One scripted HTTP answer.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(status: u16, body: String) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body,
        }
    }

    fn xml(status: u16, body: String) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "text/xml".into())],
            body,
        }
    }

    fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

fn sns_published(message_id: &str) -> String {
    format!(
        r#"<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>{message_id}</MessageId></PublishResult><ResponseMetadata><RequestId>f187a3c1-376f-11df-8963-01868b7c937a</RequestId></ResponseMetadata></PublishResponse>"#
    )
}

/// A request the scripted server received.
struct Received {
    line: String,
    body: Vec<u8>,
}

/// An HTTP server answering one connection per scripted reply, in order, and keeping what it
/// received: for provider answers the stand-ins cannot give, and AWS answers the emulator will not.
struct Scripted {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Scripted {
    fn start(replies: Vec<Reply>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        std::thread::spawn(move || {
            for reply in replies {
                let Some(Ok(mut stream)) = listener.incoming().next() else {
                    return;
                };
                if let Some(request) = read_request(&mut stream)
                    && let Ok(mut log) = log.lock()
                {
                    log.push(request);
                }
                let mut head = format!(
                    "HTTP/1.1 {} Scripted\r\nContent-Length: {}\r\nConnection: close\r\n",
                    reply.status,
                    reply.body.len()
                );
                for (name, value) in &reply.headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(reply.body.as_bytes());
            }
        });
        Scripted { url, received }
    }

    fn requests(&self) -> Vec<Received> {
        std::mem::take(&mut *self.received.lock().expect("lock"))
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Received> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        line: head.lines().next().unwrap_or_default().to_owned(),
        body: buffer[head_end..].to_vec(),
    })
}
