//! The gateway against a stand-in function (an invoke API on 127.0.0.1 that records every
//! payload), serving the real infra/template.yaml: what reaches a function, and what never does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::Json;
use axum::extract::{Path as UrlPath, State};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as B64URL};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use local_gateway::event::ApiIdentity;
use local_gateway::issuer::{DevIdentity, DevIssuer, dev_claims};
use local_gateway::template::Template;
use local_gateway::{GatewayConfig, RunningGateway};
use serde_json::{Value, json};

const AUDIENCE: &str = "herald-api";
const WIZARD_ORIGIN: &str = "https://wizard.herald.example";
/// infra/template.yaml's `StageName`.
const STAGE: &str = "v1";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One signing key for the whole binary: RSA key generation is slow in debug builds.
fn key_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("herald-gateway-test-{}", std::process::id()));
        let path = dir.join("signing-key.pem");
        let issuer = DevIssuer::load_or_create(&path);
        let pem = std::fs::read_to_string(&path).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(issuer.is_ok(), "the development key could not be made");
        pem
    })
}

fn issuer() -> anyhow::Result<DevIssuer> {
    DevIssuer::from_pem(key_pem())
}

/// A function under `cargo lambda watch`, as far as the gateway can tell: it records each
/// invocation and answers with `reply`.
#[derive(Clone, Default)]
struct StandIn {
    invocations: Arc<Mutex<Vec<(String, Value)>>>,
    reply: Arc<Mutex<Value>>,
}

impl StandIn {
    fn invocations(&self) -> Vec<(String, Value)> {
        self.invocations
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default()
    }

    fn reply_with(&self, value: Value) {
        if let Ok(mut reply) = self.reply.lock() {
            *reply = value;
        }
    }
}

async fn invoked(
    State(stand_in): State<StandIn>,
    UrlPath(function): UrlPath<String>,
    Json(payload): Json<Value>,
) -> Json<Value> {
    if let Ok(mut invocations) = stand_in.invocations.lock() {
        invocations.push((function, payload));
    }
    Json(stand_in.reply.lock().map(|r| r.clone()).unwrap_or_default())
}

struct Harness {
    gateway: RunningGateway,
    function: StandIn,
    http: reqwest::Client,
    _function_server: tokio::task::JoinHandle<()>,
}

impl Harness {
    async fn start() -> anyhow::Result<Self> {
        let function = StandIn::default();
        function.reply_with(json!({
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": "{\"ok\":true}"
        }));
        let app = axum::Router::new()
            .route(
                "/2015-03-31/functions/{function}/invocations",
                axum::routing::post(invoked),
            )
            .with_state(function.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let functions_url = format!("http://{}", listener.local_addr()?);
        let function_server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let template = Template::load(&root().join("infra/template.yaml"))?;
        let overrides = BTreeMap::from([
            ("JwtIssuer".to_owned(), base_url),
            ("JwtAudience".to_owned(), AUDIENCE.to_owned()),
            (
                "CorsAllowedOrigins".to_owned(),
                format!("{WIZARD_ORIGIN},http://localhost:5173"),
            ),
        ]);
        let api = template.http_api(None, &template.parameters(&overrides)?)?;
        let gateway = local_gateway::serve(
            listener,
            GatewayConfig {
                api,
                functions_url,
                identity: ApiIdentity {
                    account_id: "123456789012".into(),
                    api_id: "local0http".into(),
                },
                dev_issuer: Some(issuer()?),
                integration_timeout: Duration::from_secs(10),
            },
        )
        .await?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()?;
        Ok(Self {
            gateway,
            function,
            http,
            _function_server: function_server,
        })
    }

    /// `path` on the API: under its stage, as clients call it.
    fn url(&self, path: &str) -> String {
        format!("{}/{STAGE}{path}", self.gateway.base_url)
    }

    /// `path` on the gateway's origin, outside the API (the issuer's documents).
    fn origin_url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.base_url)
    }

    fn issuer_url(&self) -> &str {
        &self.gateway.base_url
    }

    fn claims(&self) -> Value {
        let who = DevIdentity {
            subject: "user-ada".into(),
            role: "tenant_admin".into(),
            tenant: Some("acme-events".into()),
        };
        dev_claims(
            &who,
            self.issuer_url(),
            AUDIENCE,
            now(),
            Duration::from_secs(600),
        )
    }
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn sign(claims: &Value) -> anyhow::Result<String> {
    issuer()?.sign(claims)
}

fn sign_with_kid(claims: &Value, kid: &str, alg: Algorithm) -> anyhow::Result<String> {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    let key = EncodingKey::from_rsa_pem(key_pem().as_bytes())?;
    Ok(jsonwebtoken::encode(&header, claims, &key)?)
}

#[tokio::test]
async fn a_valid_token_reaches_the_function_with_the_claims_as_api_gateway_passes_them()
-> anyhow::Result<()> {
    let h = Harness::start().await?;
    let claims = h.claims();
    let token = sign(&claims)?;
    let answer = h
        .http
        .post(h.url("/events/evt-2026%20gala/messages?dry=1&tag=a&tag=b"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .header("Idempotency-Key", "k-1")
        .header("cookie", "a=1; b=2")
        .body(r#"{"to":"+260971234567"}"#)
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().contains_key("apigw-requestid"));
    assert_eq!(answer.text().await?, r#"{"ok":true}"#);

    let invocations = h.function.invocations();
    let [(function, event)] = invocations.as_slice() else {
        anyhow::bail!("expected one invocation, got {}", invocations.len());
    };
    assert_eq!(function, "send-api");
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "POST /events/{eventId}/messages");
    // The stage stays in the path a function sees; the route key goes without it.
    assert_eq!(event["rawPath"], "/v1/events/evt-2026%20gala/messages");
    assert_eq!(event["rawQueryString"], "dry=1&tag=a&tag=b");
    assert_eq!(
        event["queryStringParameters"],
        json!({"dry": "1", "tag": "a,b"})
    );
    assert_eq!(event["pathParameters"], json!({"eventId": "evt-2026 gala"}));
    assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
    assert_eq!(event["headers"]["idempotency-key"], "k-1");
    assert_eq!(event["headers"]["authorization"], format!("Bearer {token}"));
    assert!(event["headers"].get("cookie").is_none());
    assert_eq!(event["body"], r#"{"to":"+260971234567"}"#);
    assert_eq!(event["isBase64Encoded"], false);

    let context = &event["requestContext"];
    assert_eq!(context["accountId"], "123456789012");
    assert_eq!(context["apiId"], "local0http");
    assert_eq!(context["stage"], STAGE);
    assert_eq!(context["routeKey"], "POST /events/{eventId}/messages");
    assert_eq!(context["http"]["method"], "POST");
    assert_eq!(
        context["http"]["path"],
        "/v1/events/evt-2026%20gala/messages"
    );
    assert_eq!(context["http"]["sourceIp"], "127.0.0.1");
    assert!(context["timeEpoch"].as_i64().is_some_and(|t| t > 0));
    // Every claim, each a string, exactly as API Gateway's authorizer hands them on.
    let expected: serde_json::Map<String, Value> = claims
        .as_object()
        .context("claims")?
        .iter()
        .map(|(k, v)| {
            let text = v
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string());
            (k.clone(), Value::String(text))
        })
        .collect();
    assert_eq!(
        context["authorizer"]["jwt"]["claims"],
        Value::Object(expected)
    );
    assert_eq!(context["authorizer"]["jwt"]["scopes"], Value::Null);

    // The same shape as the samples in events/ (which the handlers' tests are fed with).
    let sample: Value = serde_json::from_str(&std::fs::read_to_string(
        root().join("events/send-api/send-message.json"),
    )?)?;
    let keys = |v: &Value| -> BTreeSet<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(keys(&sample["requestContext"]), keys(context));
    assert_eq!(
        keys(&sample["requestContext"]["http"]),
        keys(&context["http"])
    );
    assert!(keys(&sample).is_subset(&keys(event)));

    // And lambda_http reads the claims where Herald's identity code looks for them.
    let request = lambda_http::request::from_str(&event.to_string())?;
    let lambda_http::request::RequestContext::ApiGatewayV2(ctx) =
        lambda_http::RequestExt::request_context(&request)
    else {
        anyhow::bail!("not an HTTP API v2 request");
    };
    let jwt = ctx.authorizer.and_then(|a| a.jwt).context("jwt")?;
    assert_eq!(
        jwt.claims.get("herald:tenant").map(String::as_str),
        Some("acme-events")
    );
    assert_eq!(
        jwt.claims.get("herald:role").map(String::as_str),
        Some("tenant_admin")
    );
    assert_eq!(jwt.claims.get("sub").map(String::as_str), Some("user-ada"));

    // Herald's handlers route by the route key and see the path within the stage.
    assert_eq!(
        herald_shared::http::route(&request).0,
        "POST /events/{eventId}/messages"
    );
    assert_eq!(
        herald_shared::http::api_path(&request),
        "/events/evt-2026%20gala/messages"
    );

    // Herald's own identity code (what every handler calls) finds the caller in it.
    let caller = herald_shared::http::caller(&request).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    assert_eq!(caller.subject, "user-ada");
    assert_eq!(
        caller.role,
        herald_shared::domain::identity::Role::TenantAdmin
    );
    assert_eq!(
        caller.tenant.map(|t| t.to_string()).as_deref(),
        Some("acme-events")
    );
    Ok(())
}

/// Sends `authorization` (or none) to a JWT route; checks API Gateway's 401 and that the function
/// was never invoked.
async fn assert_refused(
    h: &Harness,
    authorization: Option<String>,
    why: &str,
) -> anyhow::Result<()> {
    let mut request = h.http.get(h.url("/tenant/brand"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let answer = request.send().await?;
    assert_eq!(answer.status(), 401, "{why}");
    let challenge = answer
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert!(
        challenge.is_some_and(|c| c.starts_with("Bearer")),
        "{why}: www-authenticate"
    );
    assert_eq!(
        answer.text().await?,
        r#"{"message":"Unauthorized"}"#,
        "{why}"
    );
    assert!(
        h.function.invocations().is_empty(),
        "{why}: the function was invoked"
    );
    Ok(())
}

#[tokio::test]
async fn refused_tokens_are_401_and_never_reach_a_function() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let good = h.claims();
    let bearer = |t: String| Some(format!("Bearer {t}"));

    assert_refused(&h, None, "no Authorization header").await?;
    assert_refused(&h, Some("Bearer ".into()), "an empty token").await?;
    assert_refused(&h, Some("Bearer not-a-jwt".into()), "not a JWT").await?;

    let mut expired = good.clone();
    expired["iat"] = json!(now() - 7200);
    expired["exp"] = json!(now() - 3600);
    assert_refused(&h, bearer(sign(&expired)?), "expired").await?;

    let mut audience = good.clone();
    audience["aud"] = json!("someone-else");
    assert_refused(&h, bearer(sign(&audience)?), "wrong audience").await?;

    let mut wrong_issuer = good.clone();
    wrong_issuer["iss"] = json!("https://evil.example/");
    assert_refused(&h, bearer(sign(&wrong_issuer)?), "wrong issuer").await?;

    let mut not_yet = good.clone();
    not_yet["nbf"] = json!(now() + 3600);
    assert_refused(&h, bearer(sign(&not_yet)?), "not valid yet").await?;

    let mut from_the_future = good.clone();
    from_the_future["iat"] = json!(now() + 3600);
    assert_refused(&h, bearer(sign(&from_the_future)?), "issued in the future").await?;

    let mut no_expiry = good.clone();
    if let Some(map) = no_expiry.as_object_mut() {
        map.remove("exp");
    }
    assert_refused(&h, bearer(sign(&no_expiry)?), "no exp").await?;

    // Tampered: a signed token whose payload was changed afterwards (a role raised).
    let token = sign(&good)?;
    let [head, _, signature] = token.split('.').collect::<Vec<_>>()[..] else {
        anyhow::bail!("a JWT has three parts");
    };
    let mut raised = good.clone();
    raised["herald:role"] = json!("platform_admin");
    let payload = B64URL.encode(raised.to_string());
    assert_refused(
        &h,
        bearer(format!("{head}.{payload}.{signature}")),
        "tampered payload",
    )
    .await?;
    let mut flipped = signature.to_owned();
    let last = if flipped.ends_with('A') { "B" } else { "A" };
    flipped.replace_range(flipped.len() - 1.., last);
    assert_refused(
        &h,
        bearer(format!(
            "{head}.{}.{flipped}",
            token.split('.').nth(1).unwrap_or_default()
        )),
        "tampered signature",
    )
    .await?;

    // Unsigned: `alg: none`, with and without the issuer's kid.
    let kid = issuer()?.kid().to_owned();
    let body = B64URL.encode(good.to_string());
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "none", "kid": kid}),
    ] {
        let head = B64URL.encode(header.to_string());
        assert_refused(&h, bearer(format!("{head}.{body}.")), "alg none").await?;
        assert_refused(&h, bearer(format!("{head}.{body}")), "unsigned, two parts").await?;
    }
    // HS256 keyed with the issuer's public key (algorithm confusion), and an EC algorithm.
    let hs_head = B64URL.encode(json!({"alg": "HS256", "kid": kid}).to_string());
    assert_refused(
        &h,
        bearer(format!("{hs_head}.{body}.{}", B64URL.encode([7u8; 32]))),
        "HS256",
    )
    .await?;
    let es_head = B64URL.encode(json!({"alg": "ES256", "kid": kid}).to_string());
    assert_refused(
        &h,
        bearer(format!("{es_head}.{body}.{}", B64URL.encode([7u8; 64]))),
        "ES256",
    )
    .await?;

    // Signed by the right key but naming a key the issuer does not publish, or none.
    assert_refused(
        &h,
        bearer(sign_with_kid(&good, "not-our-key", Algorithm::RS256)?),
        "unknown kid",
    )
    .await?;
    let no_kid = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &good,
        &EncodingKey::from_rsa_pem(key_pem().as_bytes())?,
    )?;
    assert_refused(&h, bearer(no_kid), "no kid").await?;

    // The same claims, properly signed, do get through (without the Bearer prefix too).
    let answer = h
        .http
        .get(h.url("/tenant/brand"))
        .header("authorization", sign(&good)?)
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    assert_eq!(h.function.invocations().len(), 1);
    Ok(())
}

#[tokio::test]
async fn the_refusal_says_why_as_api_gateway_does() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let mut claims = h.claims();
    claims["aud"] = json!("someone-else");
    let answer = h
        .http
        .get(h.url("/tenant/brand"))
        .bearer_auth(sign(&claims)?)
        .send()
        .await?;
    assert_eq!(answer.status(), 401);
    assert_eq!(
        answer
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(
            r#"Bearer scope="" error="invalid_token" error_description="the token does not have a valid audience""#
        )
    );
    // client_id stands in for a missing aud (access tokens), as API Gateway accepts it.
    if let Some(map) = claims.as_object_mut() {
        map.remove("aud");
        map.insert("client_id".into(), json!(AUDIENCE));
    }
    let answer = h
        .http
        .get(h.url("/tenant/brand"))
        .bearer_auth(sign(&claims)?)
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    Ok(())
}

#[tokio::test]
async fn routes_without_an_authorizer_take_no_token_and_pass_binary_bodies_base64()
-> anyhow::Result<()> {
    let h = Harness::start().await?;
    let form = "MessageSid=SM1&MessageStatus=delivered";
    let answer = h
        .http
        .post(h.url("/webhooks/twilio/whk_tw_3Nf8"))
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .header("X-Twilio-Signature", "sig")
        .body(form)
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    let invocations = h.function.invocations();
    let [(function, event)] = invocations.as_slice() else {
        anyhow::bail!("expected one invocation");
    };
    assert_eq!(function, "delivery-webhooks");
    assert_eq!(event["routeKey"], "POST /webhooks/twilio/{token}");
    assert_eq!(event["pathParameters"], json!({"token": "whk_tw_3Nf8"}));
    assert_eq!(event["headers"]["x-twilio-signature"], "sig");
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(event["body"], BASE64.encode(form));
    assert!(event["requestContext"].get("authorizer").is_none());
    assert!(event.get("queryStringParameters").is_none());

    // A token on such a route is not looked at, even a bad one.
    let answer = h
        .http
        .get(h.url("/preferences/v1.abc.def"))
        .bearer_auth("garbage")
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    assert_eq!(h.function.invocations().len(), 2);
    Ok(())
}

#[tokio::test]
async fn no_route_is_404_and_function_answers_are_mapped_back() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let token = sign(&h.claims())?;
    for (method, path) in [
        ("GET", "/nowhere"),
        ("PATCH", "/tenant/brand"),
        ("GET", "/"),
    ] {
        let answer = h
            .http
            .request(method.parse()?, h.url(path))
            .bearer_auth(&token)
            .send()
            .await?;
        assert_eq!(answer.status(), 404, "{method} {path}");
        assert_eq!(answer.text().await?, r#"{"message":"Not Found"}"#);
    }
    assert!(h.function.invocations().is_empty());

    h.function.reply_with(json!({
        "statusCode": 201,
        "headers": {"content-type": "text/csv", "access-control-allow-origin": "*"},
        "cookies": ["session=1; HttpOnly", "theme=dark"],
        "body": BASE64.encode("a,b\n"),
        "isBase64Encoded": true
    }));
    let answer = h
        .http
        .get(h.url("/tenant/reports/compliance?format=csv"))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(answer.status(), 201);
    let cookies: Vec<_> = answer.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies.len(), 2);
    // CORS is the gateway's: the function's own CORS headers are dropped.
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    assert_eq!(answer.text().await?, "a,b\n");

    // A bare JSON value is a 200 application/json body.
    h.function
        .reply_with(json!({"configuration": {"ok": true}}));
    let answer = h
        .http
        .get(h.url("/events/e1/configuration"))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    assert_eq!(
        answer.json::<Value>().await?,
        json!({"configuration": {"ok": true}})
    );

    // A function error is API Gateway's 500.
    h.function
        .reply_with(json!({"errorType": "Runtime.ExitError", "errorMessage": "boom"}));
    let answer = h
        .http
        .get(h.url("/tenant/brand"))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(answer.status(), 500);
    assert_eq!(
        answer.text().await?,
        r#"{"message":"Internal Server Error"}"#
    );
    Ok(())
}

#[tokio::test]
async fn only_the_stage_is_served_and_outside_it_is_api_gateways_404() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let token = sign(&h.claims())?;
    for path in [
        "/tenant/brand",
        "/v2/tenant/brand",
        "/v1x/tenant/brand",
        "/V1/tenant/brand",
        "/",
    ] {
        let answer = h
            .http
            .get(h.origin_url(path))
            .bearer_auth(&token)
            .header("origin", WIZARD_ORIGIN)
            .send()
            .await?;
        assert_eq!(answer.status(), 404, "{path}");
        assert!(
            answer
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{path}: no API there, no CORS"
        );
        assert_eq!(answer.text().await?, r#"{"message":"Not Found"}"#);
    }
    // A preflight outside the stage is not answered as one either.
    let preflight = h
        .http
        .request(reqwest::Method::OPTIONS, h.origin_url("/tenant/brand"))
        .header("origin", WIZARD_ORIGIN)
        .header("access-control-request-method", "GET")
        .send()
        .await?;
    assert_eq!(preflight.status(), 404);
    assert!(h.function.invocations().is_empty());

    // The same route under the stage reaches its function; the route key has no stage.
    let answer = h
        .http
        .get(h.url("/tenant/brand"))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    let invocations = h.function.invocations();
    let [(function, event)] = invocations.as_slice() else {
        anyhow::bail!("expected one invocation");
    };
    assert_eq!(function, "config-api");
    assert_eq!(event["routeKey"], "GET /tenant/brand");
    assert_eq!(event["rawPath"], "/v1/tenant/brand");
    assert_eq!(event["requestContext"]["stage"], STAGE);
    Ok(())
}

#[tokio::test]
async fn cors_preflights_are_answered_from_the_template_configuration() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let preflight = |origin: &str| {
        h.http
            .request(reqwest::Method::OPTIONS, h.url("/events/e1/messages"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,idempotency-key",
            )
            .send()
    };
    let answer = preflight(WIZARD_ORIGIN).await?;
    assert_eq!(answer.status(), 204);
    let header = |name: &str| {
        answer
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header("access-control-allow-origin").as_deref(),
        Some(WIZARD_ORIGIN)
    );
    assert_eq!(
        header("access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert_eq!(
        header("access-control-allow-headers").as_deref(),
        Some("authorization,content-type,idempotency-key")
    );
    assert_eq!(
        header("access-control-allow-methods").as_deref(),
        Some("GET,POST,PUT,DELETE")
    );
    assert_eq!(header("access-control-max-age").as_deref(), Some("600"));

    let refused = preflight("https://evil.example").await?;
    assert_eq!(refused.status(), 204);
    assert!(
        refused
            .headers()
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-")),
        "a disallowed origin gets no CORS headers"
    );
    // Preflights never reach a function, nor need a token.
    assert!(h.function.invocations().is_empty());

    // The actual request from the wizard gets the CORS headers, even when refused.
    let answer = h
        .http
        .get(h.url("/tenant/brand"))
        .header("origin", WIZARD_ORIGIN)
        .send()
        .await?;
    assert_eq!(answer.status(), 401);
    assert_eq!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(WIZARD_ORIGIN)
    );
    let answer = h
        .http
        .get(h.url("/tenant/brand"))
        .header("origin", WIZARD_ORIGIN)
        .bearer_auth(sign(&h.claims())?)
        .send()
        .await?;
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer
            .headers()
            .get("access-control-allow-credentials")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    Ok(())
}

#[tokio::test]
async fn the_issuer_publishes_its_keys_on_the_gateway_origin() -> anyhow::Result<()> {
    let h = Harness::start().await?;
    let discovery: Value = h
        .http
        .get(h.origin_url("/.well-known/openid-configuration"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(discovery["issuer"], h.issuer_url());
    let jwks_uri = discovery["jwks_uri"].as_str().context("jwks_uri")?;
    let jwks: Value = h.http.get(jwks_uri).send().await?.json().await?;
    assert_eq!(jwks["keys"][0]["kid"], issuer()?.kid());
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "only the public half is published"
    );
    Ok(())
}

/// Every `Type: HttpApi` event in infra/template.yaml, read as plain text (independently of the
/// YAML reader), is one route of the gateway, served by a function crate of the workspace.
#[test]
fn the_route_table_covers_every_http_api_event_of_the_template() -> anyhow::Result<()> {
    let text = std::fs::read_to_string(root().join("infra/template.yaml"))?;
    let mut expected = BTreeSet::new();
    for line in text.lines().filter(|l| l.contains("Type: HttpApi")) {
        let field = |name: &str| -> Option<String> {
            let rest = line.split(&format!("{name}: ")).nth(1)?;
            let value: String = match rest.strip_prefix('"') {
                Some(quoted) => quoted.chars().take_while(|c| *c != '"').collect(),
                None => rest
                    .chars()
                    .take_while(|c| !matches!(c, ',' | '}'))
                    .collect(),
            };
            Some(value.trim().to_owned())
        };
        let method = field("Method").context("Method")?;
        let path = field("Path").context("Path")?;
        let open = line.contains("Authorizer: NONE");
        expected.insert((format!("{method} {path}"), open));
    }
    assert!(expected.len() > 60, "found {} events", expected.len());

    let template = Template::load(&root().join("infra/template.yaml"))?;
    let overrides = BTreeMap::from([
        ("JwtIssuer".to_owned(), "http://127.0.0.1:1".to_owned()),
        ("JwtAudience".to_owned(), AUDIENCE.to_owned()),
    ]);
    let api = template.http_api(None, &template.parameters(&overrides)?)?;
    let served: BTreeSet<(String, bool)> = api
        .routes
        .iter()
        .map(|r| (r.route_key.clone(), r.authorizer.is_none()))
        .collect();
    assert_eq!(served, expected);
    assert_eq!(api.routes.len(), expected.len(), "no route twice");
    for route in &api.routes {
        assert!(
            root()
                .join("functions")
                .join(&route.function)
                .join("Cargo.toml")
                .exists(),
            "{} is served by {}, which is no function crate",
            route.route_key,
            route.function
        );
    }
    assert_eq!(api.authorizers.len(), 1);
    assert_eq!(api.authorizers[0].audience, [AUDIENCE]);
    let cors = api.cors.context("the HTTP API has a CorsConfiguration")?;
    assert!(cors.allow_credentials);
    assert!(!cors.allow_origins.iter().any(|o| o == "*"));
    for header in ["authorization", "content-type", "idempotency-key"] {
        assert!(cors.allow_headers.iter().any(|h| h == header), "{header}");
    }
    Ok(())
}
