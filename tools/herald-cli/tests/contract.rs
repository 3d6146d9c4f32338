//! The HTTP contract: the committed `docs/openapi.json` is what the code generates; the spec's
//! routes, the SAM template's routes and the routes the handlers serve are one set; every code
//! of the error catalogue is in the document; `herald openapi` prints it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use herald_shared::api::contract::{self, Examples};
use herald_shared::api::routes::RouteId;
use herald_shared::domain::ErrorCode;
use local_gateway::template::Template;

const REGENERATE: &str = "cargo run -p herald-cli -- openapi > docs/openapi.json";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn generated() -> String {
    let examples = Examples::load(&root().join("events")).expect("the sample events");
    contract::render(&examples)
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let committed = std::fs::read_to_string(root().join("docs/openapi.json"))
        .unwrap_or_else(|e| panic!("docs/openapi.json: {e}; generate it with `{REGENERATE}`"));
    let generated = generated();
    if committed.trim_end() != generated.trim_end() {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "docs/openapi.json differs from the document the code generates (from line {}); \
             regenerate it with `{REGENERATE}` and commit it",
            line + 1
        );
    }
}

#[test]
fn herald_openapi_prints_the_document() {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["openapi", "--events"])
        .arg(root().join("events"))
        .output()
        .expect("the CLI runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        generated().trim_end()
    );
}

fn spec_routes(document: &serde_json::Value) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            keys.insert(format!("{} {path}", method.to_ascii_uppercase()));
        }
    }
    keys
}

#[test]
fn the_spec_the_template_and_the_handlers_serve_the_same_routes() {
    let template = Template::load(&root().join("infra/template.yaml")).expect("the template");
    // The issuer and audience only configure the authorizer; the routes do not depend on them.
    let overrides = BTreeMap::from([
        ("JwtIssuer".to_owned(), "https://issuer.example/".to_owned()),
        ("JwtAudience".to_owned(), "herald-api".to_owned()),
    ]);
    let parameters = template
        .parameters(&overrides)
        .expect("the template's parameters");
    let api = template.http_api(None, &parameters).expect("the HTTP API");
    let in_template: BTreeMap<String, (String, bool)> = api
        .routes
        .iter()
        .map(|r| {
            (
                r.route_key.clone(),
                (r.function.clone(), r.authorizer.is_none()),
            )
        })
        .collect();
    let served: BTreeSet<String> = RouteId::ALL.iter().map(|r| r.key().to_owned()).collect();
    let document: serde_json::Value = serde_json::from_str(&generated()).expect("JSON");
    let in_spec = spec_routes(&document);

    let template_keys: BTreeSet<String> = in_template.keys().cloned().collect();
    let missing_in_template: Vec<_> = served.difference(&template_keys).collect();
    let not_served: Vec<_> = template_keys.difference(&served).collect();
    assert!(
        missing_in_template.is_empty() && not_served.is_empty(),
        "served but not in infra/template.yaml (add an HttpApi event to its function): {missing_in_template:?}; \
         in the template but in no handler (add it to shared/src/api/routes.rs): {not_served:?}"
    );
    assert_eq!(
        in_spec, served,
        "the generated document's routes are the route table's"
    );
    for route in RouteId::ALL {
        let (function, public) = &in_template[route.key()];
        assert_eq!(
            function,
            route.function().binary(),
            "{}: the template routes it to another function",
            route.key()
        );
        assert_eq!(
            *public,
            route.public(),
            "{}: the template and the route table disagree on whether it needs a token",
            route.key()
        );
        let operation = &document["paths"][route.path()][route.method().to_ascii_lowercase()];
        assert_eq!(
            operation["security"].as_array().is_some_and(Vec::is_empty),
            route.public(),
            "{}: security",
            route.key()
        );
    }
}

#[test]
fn every_catalogue_code_is_in_the_document_and_routes_answer_only_catalogued_codes() {
    let document: serde_json::Value = serde_json::from_str(&generated()).expect("JSON");
    let listed: BTreeSet<&str> = document["components"]["schemas"]["ErrorCode"]["oneOf"]
        .as_array()
        .expect("the catalogue")
        .iter()
        .filter_map(|c| c["const"].as_str())
        .collect();
    let catalogue: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, catalogue);

    let mut answered = BTreeSet::new();
    for item in document["paths"].as_object().expect("paths").values() {
        for operation in item.as_object().expect("a path item").values() {
            for (status, response) in operation["responses"].as_object().expect("responses") {
                let schema = &response["content"]["application/json"]["schema"];
                let Some(codes) =
                    schema["properties"]["error"]["properties"]["code"]["enum"].as_array()
                else {
                    continue;
                };
                for code in codes {
                    let code = code.as_str().expect("a code");
                    let known = ErrorCode::ALL
                        .iter()
                        .find(|c| c.as_str() == code)
                        .unwrap_or_else(|| panic!("{code} is not in the catalogue"));
                    assert_eq!(
                        known.status().map(|s| s.to_string()).as_deref(),
                        Some(status.as_str())
                    );
                    answered.insert(code);
                }
            }
        }
    }
    // Every code with a status of its own is answered by some route, except the quota code
    // whose route (test sends) arrives separately.
    let unanswered: Vec<_> = ErrorCode::ALL
        .iter()
        .filter(|c| c.status().is_some() && !answered.contains(c.as_str()))
        .filter(|c| **c != ErrorCode::QuotaExceeded)
        .collect();
    assert!(unanswered.is_empty(), "no route answers {unanswered:?}");
}

#[test]
fn every_status_event_type_is_a_signed_versioned_webhook() {
    use herald_shared::domain::status_event::{STATUS_EVENT_VERSION, StatusEventType};
    let document: serde_json::Value = serde_json::from_str(&generated()).expect("JSON");
    let hooks = document["webhooks"].as_object().expect("webhooks");
    assert_eq!(hooks.len(), StatusEventType::ALL.len());
    for kind in StatusEventType::ALL {
        let post = &hooks[kind.as_str()]["post"];
        let headers: BTreeSet<&str> = post["parameters"]
            .as_array()
            .expect("headers")
            .iter()
            .filter(|p| p["in"] == "header" && p["required"] == true)
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(
            headers,
            BTreeSet::from(["webhook-id", "webhook-timestamp", "webhook-signature"]),
            "{}",
            kind.as_str()
        );
        let payload = &post["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(payload["properties"]["type"]["const"], kind.as_str());
        assert_eq!(
            payload["properties"]["version"]["const"],
            STATUS_EVENT_VERSION
        );
        assert!(
            payload["required"]
                .as_array()
                .is_some_and(|r| r.contains(&"version".into()))
        );
    }
}
