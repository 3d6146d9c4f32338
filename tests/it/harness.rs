//! Test harness: one emulator and one SMTP server per test process (started on first use, gone
//! when the process exits), and per test a fresh tenant, stand-ins and an [`App`] wired to them.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use herald_shared::App;
use herald_shared::api;
use herald_shared::app::AppConfig;
use herald_shared::observability::AwsRequestCounter;
use herald_shared::providers::ProviderEndpoints;
use provider_standins::{RunningStandIns, StandIns};
use serde_json::{Value, json};

pub const TWILIO_SID: &str = "AC5f1c2b7e9d0a4c3b8e6f7a1d2c3b4a59";
pub const TWILIO_TOKEN: &str = "tw-auth-token-0000-demo-4d2f";
pub const AT_USERNAME: &str = "acme_gala";
pub const AT_KEY: &str = "atsk_demo_0000000000000000a1b2";
pub const BREVO_KEY: &str = "xkeysib-demo-0000000000000000beef";
pub const META_PHONE: &str = "106540352242922";
/// The WhatsApp Business Account that owns [`META_PHONE`] (where its templates are registered).
pub const META_WABA: &str = "102290129340398";
pub const META_TOKEN: &str = "EAAGm0PX4ZCpsBA-demo-token-7731";
pub const SMTP_USER: &str = "herald";
pub const SMTP_PASSWORD: &str = "smtp-pass-demo-91c3";
/// Every secret the tests configure: none may appear in a response or a log line.
pub const SECRETS: [&str; 6] = [
    TWILIO_TOKEN,
    AT_KEY,
    BREVO_KEY,
    META_TOKEN,
    SMTP_PASSWORD,
    "app-secret-demo-55e1",
];

pub use local_stack::Stack;

/// The emulator most tests share (each uses its own tenant).
pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| Stack::start().expect("the local stack starts"))
}

/// A real SMTP server (aiosmtpd) with AUTH, once per test process.
pub fn smtp() -> &'static local_stack::SmtpServer {
    static SMTP: OnceLock<local_stack::SmtpServer> = OnceLock::new();
    SMTP.get_or_init(|| {
        local_stack::SmtpServer::start(SMTP_USER, SMTP_PASSWORD, &[])
            .expect("the SMTP server starts")
    })
}

/// Captured log output of the whole test process (JSON lines), for redaction checks.
pub fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,hyper=info,h2=info,aws_smithy_runtime=info,aws_config=info",
            ))
            .with_writer(move || CaptureWriter(writer.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    })
    .clone()
}

struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One test's world: a fresh tenant id, provider stand-ins and the app wired to both.
pub struct World {
    pub stack: &'static Stack,
    pub app: App,
    pub tenant: String,
    pub standins: RunningStandIns,
    pub counter: AwsRequestCounter,
    pub aws: aws_config::SdkConfig,
    /// The `receipts` part of each tenant provider's creation answer, by provider kind: the
    /// route and the secret shown that one time.
    pub receipt_routes: Mutex<HashMap<String, Value>>,
}

impl World {
    pub async fn new() -> World {
        Self::on(stack()).await
    }

    /// A world with an emulator of its own: for tests that drain queues.
    pub async fn isolated() -> World {
        Self::on(Box::leak(Box::new(
            Stack::start().expect("the local stack starts"),
        )))
        .await
    }

    /// [`World::isolated`] on an emulator provisioned with template parameters (`Key=Value`).
    pub async fn isolated_with(params: &[&str]) -> World {
        let params: Vec<String> = params.iter().map(|p| (*p).to_owned()).collect();
        Self::on(Box::leak(Box::new(
            Stack::start_with(&params).expect("the local stack starts"),
        )))
        .await
    }

    async fn on(stack: &'static Stack) -> World {
        logs();
        let standins = StandIns::builder()
            .twilio_account(TWILIO_SID, TWILIO_TOKEN)
            .africastalking_account(AT_USERNAME, AT_KEY)
            .brevo_key(BREVO_KEY)
            .meta_business_phone_number(META_WABA, META_PHONE, META_TOKEN)
            .build()
            .spawn()
            .await
            .expect("stand-ins start");
        let mut config = AppConfig::from_vars(&|name| stack.env.get(name).cloned())
            .expect("the stack's environment");
        config.endpoints = ProviderEndpoints {
            twilio: standins.twilio_base_url().to_owned(),
            africastalking: standins.africastalking_base_url().to_owned(),
            brevo: standins.brevo_base_url().to_owned(),
            meta_graph: standins.meta_graph_base_url().to_owned(),
            twilio_content: standins.twilio_content_base_url().to_owned(),
        };
        let aws = stack.sdk_config().await;
        let counter = AwsRequestCounter::default();
        let app = App::new(&aws, config, Some(counter.clone()));
        let tenant = format!("t-{}", ulid::Ulid::new().to_string().to_lowercase());
        World {
            stack,
            app,
            tenant,
            standins,
            counter,
            aws,
            receipt_routes: Mutex::new(HashMap::new()),
        }
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.aws)
    }

    /// A sample request from `events/`, re-addressed to this world's tenant.
    pub fn event(&self, name: &str) -> Request {
        let path = local_stack::repo_root().join(format!("events/{name}.json"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut event: Value = serde_json::from_str(&text).expect("fixture is JSON");
        let claims = &mut event["requestContext"]["authorizer"]["jwt"]["claims"];
        if claims.get("herald:tenant").is_some() {
            claims["herald:tenant"] = json!(self.tenant);
        }
        Request(event)
    }

    pub async fn call(&self, request: Request) -> Reply {
        let event = request.0;
        let route = event["routeKey"].as_str().unwrap_or_default().to_owned();
        let request =
            lambda_http::request::from_str(&event.to_string()).expect("valid API Gateway event");
        let response = api::serve_any(&self.app, request)
            .await
            .expect("handlers answer every request");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let text = match response.body() {
            lambda_http::Body::Text(t) => t.clone(),
            _ => String::new(),
        };
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            route,
            status,
            body,
            text,
            headers,
        }
    }

    /// Calls and insists on a 2xx answer.
    pub async fn ok(&self, request: Request) -> Value {
        let reply = self.call(request).await;
        if !(200..300).contains(&reply.status) {
            let logged =
                String::from_utf8_lossy(&logs().lock().map(|l| l.clone()).unwrap_or_default())
                    .to_string();
            let errors: Vec<&str> = logged.lines().filter(|l| l.contains("\"ERROR\"")).collect();
            panic!(
                "{} answered {}: {}\nerrors logged: {errors:#?}",
                reply.route, reply.status, reply.text
            );
        }
        reply.body
    }
}

/// A sample API Gateway request being adjusted for a test.
pub struct Request(pub Value);

impl Request {
    pub fn path(mut self, name: &str, value: &str) -> Self {
        self.0["pathParameters"][name] = json!(value);
        self
    }

    pub fn body(mut self, body: Value) -> Self {
        self.0["body"] = json!(body.to_string());
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.0["headers"][name] = json!(value);
        self
    }

    pub fn claim(mut self, name: &str, value: &str) -> Self {
        self.0["requestContext"]["authorizer"]["jwt"]["claims"][name] = json!(value);
        self
    }
}

#[derive(Debug)]
pub struct Reply {
    pub route: String,
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: HashMap<String, String>,
}

/// Body JSON of a provider of each kind this harness can serve.
pub fn provider_body(kind: &str) -> Value {
    match kind {
        "twilio" => {
            json!({"channel": "sms", "name": "Twilio", "settings": {"kind": "twilio", "account_sid": TWILIO_SID, "from": "+260211555010"},
                            "credentials": {"auth_token": TWILIO_TOKEN}})
        }
        "twilio_whatsapp" => {
            json!({"channel": "whatsapp", "name": "Twilio WhatsApp", "settings": {"kind": "twilio", "account_sid": TWILIO_SID, "from": "whatsapp:+260211555010"},
                            "credentials": {"auth_token": TWILIO_TOKEN}})
        }
        "africas_talking" => {
            json!({"channel": "sms", "name": "Africa's Talking", "settings": {"kind": "africas_talking", "username": AT_USERNAME, "sender_id": "ACMEGALA"},
                            "credentials": {"api_key": AT_KEY}})
        }
        "brevo" => {
            json!({"channel": "email", "name": "Brevo", "settings": {"kind": "brevo", "from_address": "events@acme.example"},
                            "credentials": {"api_key": BREVO_KEY}})
        }
        "meta_whatsapp" => {
            json!({"channel": "whatsapp", "name": "Meta WhatsApp", "settings": {"kind": "meta_whatsapp", "phone_number_id": META_PHONE, "business_account_id": META_WABA},
                            "credentials": {"access_token": META_TOKEN, "app_secret": "app-secret-demo-55e1"}})
        }
        "smtp" => {
            json!({"channel": "email", "name": "Legacy SMTP", "settings": {"kind": "smtp", "host": "127.0.0.1", "port": smtp().port, "security": "none",
                            "username": SMTP_USER, "from_address": "events@acme.example"}, "credentials": {"password": SMTP_PASSWORD}, "priority": 2})
        }
        "ses" => {
            json!({"channel": "email", "name": "Amazon SES", "settings": {"kind": "ses", "from_address": "events@acme.example"}})
        }
        "sns" => {
            json!({"channel": "sms", "name": "Amazon SNS", "settings": {"kind": "sns", "sms_type": "transactional"}, "priority": 3})
        }
        other => panic!("no sample provider of kind {other}"),
    }
}

impl World {
    /// Creates a tenant-default provider and returns its id.
    pub async fn tenant_provider(&self, body: Value) -> String {
        let created = self
            .ok(self.event("config-api/create-tenant-provider").body(body))
            .await;
        if let (Some(kind), Ok(mut routes)) = (
            created["settings"]["kind"].as_str(),
            self.receipt_routes.lock(),
        ) {
            routes.insert(kind.to_owned(), created["receipts"].clone());
        }
        created["id"].as_str().expect("id").to_owned()
    }

    /// An event with settings (email + SMS, two categories), a brand, tenant providers
    /// (Twilio SMS, Brevo email) and tenant templates for every slot in use.
    pub async fn configured_event(&self) -> HashMap<&'static str, String> {
        self.ok(self.event("config-api/put-event-settings")).await;
        self.ok(self.event("config-api/put-tenant-brand")).await;
        let twilio = self.tenant_provider(provider_body("twilio")).await;
        let brevo = self.tenant_provider(provider_body("brevo")).await;
        for category in ["invitation", "rsvp_confirmation"] {
            self.ok(self
                .event("config-api/put-tenant-template")
                .path("category", category))
                .await;
            self.ok(self
                .event("config-api/put-tenant-email-template")
                .path("category", category))
                .await;
        }
        HashMap::from([("twilio", twilio), ("brevo", brevo)])
    }
}

impl World {
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.aws)
    }

    pub fn dispatcher(&self) -> herald_shared::dispatch::Dispatcher {
        herald_shared::dispatch::Dispatcher::from_app(
            &self.app,
            herald_shared::dispatch::DispatchConfig::default(),
        )
    }

    /// Receives one batch from `channel`'s queue as Lambda's event source mapping would, hands
    /// it to the dispatch handler, deletes what it did not report as failed, and returns the
    /// batch's (queue message ids, failed ids). `repeat` delivers the same batch that many times.
    pub async fn deliver(
        &self,
        dispatcher: &herald_shared::dispatch::Dispatcher,
        channel: &str,
        repeat: usize,
    ) -> (Vec<String>, Vec<String>) {
        let queue = herald_shared::dispatch::sqs::QueueClient::new(self.sqs());
        self.drive(channel, async |event| {
            let mut response = aws_lambda_events::event::sqs::SqsBatchResponse::default();
            for _ in 0..repeat.max(1) {
                response =
                    herald_shared::dispatch::sqs::handle(dispatcher, &queue, event.clone()).await;
            }
            response
        })
        .await
    }

    /// Like [`World::deliver`], for any queue in stack.json's `queues` (a channel, or a
    /// consumer binary such as `status-webhooks`) and any batch handler.
    pub async fn drive(
        &self,
        queue_key: &str,
        handler: impl AsyncFn(
            aws_lambda_events::event::sqs::SqsEvent,
        ) -> aws_lambda_events::event::sqs::SqsBatchResponse,
    ) -> (Vec<String>, Vec<String>) {
        let sqs = self.sqs();
        let url = self.stack.queue(queue_key, "url").expect("queue url");
        let arn = self.stack.queue(queue_key, "arn").expect("queue arn");
        let received = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive");
        let messages = received.messages.unwrap_or_default();
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let attributes: serde_json::Map<String, Value> =
                    m.attributes().map(|a| a.iter().map(|(k, v)| (k.as_str().to_owned(), json!(v))).collect()).unwrap_or_default();
                let message_attributes: serde_json::Map<String, Value> = m
                    .message_attributes()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| (k.clone(), json!({"stringValue": v.string_value(), "dataType": v.data_type()})))
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                    "attributes": attributes, "messageAttributes": message_attributes, "md5OfBody": m.md5_of_body(),
                    "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": self.stack.env["AWS_REGION"],
                })
            })
            .collect();
        let ids: Vec<String> = messages
            .iter()
            .filter_map(|m| m.message_id().map(str::to_owned))
            .collect();
        if records.is_empty() {
            return (ids, Vec::new());
        }
        let event: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_value(json!({ "Records": records })).expect("SQS event");
        let failed: Vec<String> = handler(event)
            .await
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        for m in &messages {
            if m.message_id()
                .is_some_and(|id| !failed.iter().any(|f| f == id))
                && let Some(handle) = m.receipt_handle()
            {
                sqs.delete_message()
                    .queue_url(&url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete");
            }
        }
        (ids, failed)
    }

    /// Publishes a live event: the configured event plus the given extra tenant providers,
    /// completed into an active snapshot.
    pub async fn live_event(&self, extra: &[Value]) {
        self.configured_event().await;
        for body in extra {
            self.tenant_provider(body.clone()).await;
        }
        self.ok(self.event("wizard-completion/complete-wizard"))
            .await;
    }
}

// ---- the delivery-webhooks function over HTTP ----

impl World {
    /// Serves the delivery-webhooks handler over HTTP on 127.0.0.1, as API Gateway would pass
    /// requests to it (payload v2.0, raw body base64), and makes that server Herald's public
    /// URL: receipt URLs given to providers (Twilio's `StatusCallback`) point at it. Returns the
    /// base URL. The server lives as long as the test's runtime.
    pub async fn serve_receipts(&mut self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        self.app.public_url = Some(base.clone());
        let receiver = Arc::new(
            herald_shared::api::receipts::Receiver::new(self.app.clone()).expect("receiver"),
        );
        let router = axum::Router::new().fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: axum::http::HeaderMap,
                  body: axum::body::Bytes| {
                let receiver = receiver.clone();
                async move {
                    let event = api_gateway_event(&method, &uri, &headers, &body);
                    let request = lambda_http::request::from_str(&event.to_string())
                        .expect("valid API Gateway event");
                    let response = herald_shared::api::receipts::handle(&receiver, request)
                        .await
                        .unwrap_or_else(herald_shared::http::ApiError::into_response);
                    let status = axum::http::StatusCode::from_u16(response.status().as_u16())
                        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
                    (status, response.body().as_ref().to_vec())
                }
            },
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        base
    }

    /// The receipt route (`url`, `secret`...) a provider kind's configuration was given.
    pub fn receipt_route(&self, kind: &str) -> Value {
        self.receipt_routes
            .lock()
            .map(|r| r.get(kind).cloned().unwrap_or(Value::Null))
            .unwrap_or(Value::Null)
    }
}

/// An HTTP API (payload v2.0) event for a request to `/webhooks/{provider}/{token}`.
fn api_gateway_event(
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Value {
    use base64::Engine as _;
    let path = uri.path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (route, token) = match segments.as_slice() {
        ["webhooks", provider, token] => (
            format!("{method} /webhooks/{provider}/{{token}}"),
            Some((*token).to_owned()),
        ),
        _ => (format!("{method} {path}"), None),
    };
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or_default())))
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    json!({
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": uri.query().unwrap_or(""),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "127.0.0.1",
            "domainPrefix": "127", "requestId": ulid::Ulid::new().to_string(),
            "routeKey": route, "stage": "$default", "timeEpoch": now as u64,
            "http": {"method": method.as_str(), "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "test"}
        },
        "pathParameters": token.map(|t| json!({"token": t})).unwrap_or(Value::Null),
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true,
    })
}
