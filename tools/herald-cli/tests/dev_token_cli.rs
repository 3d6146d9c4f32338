//! `herald dev-token` end to end with the local gateway: the printed token passes the gateway's
//! JWT authorizer and its claims reach the function (a stand-in invoke API on 127.0.0.1) as
//! Herald's identity code reads them; a token from another key, or bad flags, get nowhere.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use local_gateway::GatewayConfig;
use local_gateway::event::ApiIdentity;
use local_gateway::issuer::DevIssuer;
use local_gateway::template::Template;
use serde_json::{Value, json};

type Recorded = Arc<Mutex<Vec<Value>>>;

async fn record(State(seen): State<Recorded>, Json(event): Json<Value>) -> Json<Value> {
    if let Ok(mut seen) = seen.lock() {
        seen.push(event);
    }
    Json(json!({"statusCode": 200, "body": "{}"}))
}

fn herald(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env_clear()
        .output()
        .expect("the CLI runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_dev_token_passes_the_local_gateway_with_heralds_claims() {
    let dir = std::env::temp_dir().join(format!("herald-dev-token-{}", std::process::id()));
    let key = dir.join("signing-key.pem");
    let state = dir.join("gateway.json");

    let seen = Recorded::default();
    let app = axum::Router::new()
        .route(
            "/2015-03-31/functions/{function}/invocations",
            axum::routing::post(record),
        )
        .with_state(seen.clone());
    let functions = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let functions_url = format!("http://{}", functions.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(functions, app).await;
    });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base_url = format!("http://{}", listener.local_addr().expect("addr"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let template = Template::load(&root.join("infra/template.yaml")).expect("the template");
    let overrides = BTreeMap::from([
        ("JwtIssuer".to_owned(), base_url.clone()),
        ("JwtAudience".to_owned(), "herald-api".to_owned()),
    ]);
    let api = template
        .http_api(None, &template.parameters(&overrides).expect("parameters"))
        .expect("the HTTP API");
    // The API's routes are under its stage (`/v1`); the issuer is the gateway's origin.
    let api_url = format!("{base_url}{}", api.base_path());
    let gateway = local_gateway::serve(
        listener,
        GatewayConfig {
            api,
            functions_url,
            identity: ApiIdentity {
                account_id: "123456789012".into(),
                api_id: "local0http".into(),
            },
            dev_issuer: Some(DevIssuer::load_or_create(&key).expect("the key")),
            integration_timeout: Duration::from_secs(10),
        },
    )
    .await
    .expect("the gateway starts");
    std::fs::write(
        &state,
        json!({"base_url": base_url, "api_url": api_url, "issuer": base_url, "audience": ["herald-api"]})
            .to_string(),
    )
    .expect("state file");

    let key_arg = key.to_string_lossy().into_owned();
    let state_arg = state.to_string_lossy().into_owned();
    let (code, token, stderr) = herald(&[
        "dev-token",
        "--tenant",
        "acme-events",
        "--role",
        "event_manager",
        "--sub",
        "user-eve",
        "--ttl",
        "5m",
        "--key",
        &key_arg,
        "--gateway-state",
        &state_arg,
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains(&token),
        "the token is printed on stdout only"
    );

    let http = reqwest::Client::new();
    let answer = http
        .get(format!("{api_url}/events/gala-2026/configuration"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(answer.status(), 200);
    let events = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(events.len(), 1);
    let claims = &events[0]["requestContext"]["authorizer"]["jwt"]["claims"];
    assert_eq!(claims["sub"], "user-eve");
    assert_eq!(claims["herald:tenant"], "acme-events");
    assert_eq!(claims["herald:role"], "event_manager");
    assert_eq!(claims["iss"], json!(gateway.base_url));
    assert_eq!(claims["aud"], "herald-api");
    assert_eq!(claims["token_use"], "access");
    let seconds = |name: &str| claims[name].as_str().and_then(|s| s.parse::<u64>().ok());
    assert_eq!(
        seconds("exp").zip(seconds("iat")).map(|(e, i)| e - i),
        Some(300)
    );

    // A platform admin needs no tenant; everyone else does; bad roles and ttls are refused.
    let (code, admin, _) = herald(&[
        "dev-token",
        "--role",
        "platform_admin",
        "--key",
        &key_arg,
        "--gateway-state",
        &state_arg,
    ]);
    assert_eq!(code, 0);
    assert_eq!(admin.split('.').count(), 3);
    for bad in [
        vec!["--role", "tenant_admin"],
        vec!["--tenant", "acme-events", "--role", "root"],
        vec![
            "--tenant",
            "acme-events",
            "--role",
            "tenant_admin",
            "--ttl",
            "forever",
        ],
    ] {
        let mut args = vec![
            "dev-token",
            "--key",
            &key_arg,
            "--gateway-state",
            &state_arg,
        ];
        args.extend(bad.iter().copied());
        let (code, out, _) = herald(&args);
        assert_eq!((code, out.as_str()), (2, ""), "{bad:?}");
    }

    // A token signed with a key the gateway does not publish is refused before the function.
    let other_key = dir.join("other-key.pem").to_string_lossy().into_owned();
    let (code, forged, _) = herald(&[
        "dev-token",
        "--tenant",
        "acme-events",
        "--role",
        "tenant_admin",
        "--key",
        &other_key,
        "--gateway-state",
        &state_arg,
    ]);
    assert_eq!(code, 0);
    let answer = http
        .get(format!("{api_url}/tenant/brand"))
        .bearer_auth(&forged)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(answer.status(), 401);
    assert_eq!(seen.lock().map(|s| s.len()).unwrap_or_default(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
