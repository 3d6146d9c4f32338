//! The identity resources of infra/template.yaml keep the promises this trigger relies on: the
//! pool invokes this binary with event version 3 by the name the function is deployed under,
//! nobody but an administrator can write a user's tenant or role, and the app clients have the
//! grants infra/README.md describes.

use serde_yaml_ng::Value;

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/template.yaml");
    let text = std::fs::read_to_string(path).expect("infra/template.yaml");
    serde_yaml_ng::from_str(&text).expect("the template is YAML")
}

fn resource<'t>(template: &'t Value, name: &str) -> &'t Value {
    template
        .get("Resources")
        .and_then(|r| r.get(name))
        .unwrap_or_else(|| panic!("resource {name}"))
}

fn property<'r>(resource: &'r Value, path: &[&str]) -> &'r Value {
    let mut node = resource.get("Properties").expect("Properties");
    for key in path {
        node = node
            .get(*key)
            .unwrap_or_else(|| panic!("property {path:?}"));
    }
    node
}

/// The text of a `!Sub` (or a plain string).
fn sub_text(value: &Value) -> String {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Sub" => {
            tagged.value.as_str().expect("!Sub of a string").to_owned()
        }
        Value::String(s) => s.clone(),
        other => panic!("expected !Sub, found {other:?}"),
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

#[test]
fn the_pool_invokes_this_function_with_event_version_3() {
    let template = template();
    let pool = resource(&template, "UserPool");
    let config = property(pool, &["LambdaConfig", "PreTokenGenerationConfig"]);
    assert_eq!(
        config.get("LambdaVersion").and_then(Value::as_str),
        Some("V3_0")
    );
    assert_eq!(
        property(pool, &["UserPoolTier"]).as_str(),
        Some("ESSENTIALS"),
        "access token customization needs the Essentials tier"
    );

    let function = resource(&template, "PreTokenGenerationFunction");
    let name = sub_text(property(function, &["FunctionName"]));
    let arn = sub_text(config.get("LambdaArn").expect("LambdaArn"));
    assert_eq!(
        arn,
        format!(
            "arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:{name}"
        )
    );
    let binary = function
        .get("Metadata")
        .and_then(|m| m.get("BuildProperties"))
        .and_then(|b| b.get("Binary"))
        .and_then(Value::as_str);
    assert_eq!(binary, Some(env!("CARGO_PKG_NAME")));
    assert!(
        property(function, &["Environment", "Variables"])
            .get("TENANT_SYSTEM_CLIENTS")
            .is_some()
    );

    let permission = resource(&template, "PreTokenGenerationPermission");
    assert_eq!(
        property(permission, &["Principal"]).as_str(),
        Some("cognito-idp.amazonaws.com")
    );
}

#[test]
fn only_administrators_set_a_users_tenant_and_role() {
    let template = template();
    let pool = resource(&template, "UserPool");
    assert_eq!(
        property(pool, &["AdminCreateUserConfig", "AllowAdminCreateUserOnly"]).as_bool(),
        Some(true)
    );
    let attributes: Vec<_> = property(pool, &["Schema"])
        .as_sequence()
        .expect("Schema")
        .iter()
        .filter_map(|a| a.get("Name").and_then(Value::as_str))
        .collect();
    assert_eq!(attributes, ["tenant", "role"]);

    let resources = template
        .get("Resources")
        .and_then(Value::as_mapping)
        .expect("Resources");
    let clients: Vec<_> = resources
        .iter()
        .filter(|(_, r)| {
            r.get("Type").and_then(Value::as_str) == Some("AWS::Cognito::UserPoolClient")
        })
        .collect();
    assert!(clients.len() >= 2, "the wizard's and a tenant system's");
    for (name, client) in clients {
        // Explicit on every client, so what it may write is read here, not left to defaults.
        let writable = strings(property(client, &["WriteAttributes"]));
        assert!(
            !writable.iter().any(|a| a.starts_with("custom:")),
            "{name:?} may write {writable:?}"
        );
    }
}

#[test]
fn the_clients_have_the_grants_the_readme_describes() {
    let template = template();
    let wizard = resource(&template, "WizardClient");
    assert_eq!(property(wizard, &["GenerateSecret"]).as_bool(), Some(false));
    assert_eq!(strings(property(wizard, &["AllowedOAuthFlows"])), ["code"]);
    assert!(strings(property(wizard, &["AllowedOAuthScopes"])).contains(&"herald/api".to_owned()));

    let system = resource(&template, "TenantSystemClient");
    assert_eq!(property(system, &["GenerateSecret"]).as_bool(), Some(true));
    assert_eq!(
        strings(property(system, &["AllowedOAuthFlows"])),
        ["client_credentials"]
    );
    assert_eq!(
        strings(property(system, &["AllowedOAuthScopes"])),
        ["herald/api"]
    );
    let server = resource(&template, "ApiResourceServer");
    assert_eq!(property(server, &["Identifier"]).as_str(), Some("herald"));
}
