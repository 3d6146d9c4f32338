//! Reads what API Gateway is told in the SAM template: the HTTP API's JWT authorizers and CORS
//! configuration, and every `HttpApi` event of every function, with parameters resolved the way
//! CloudFormation would (template defaults, then samconfig.toml's overrides, then flags).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, anyhow, bail};
use serde_yaml_ng::Value;

/// The template, parsed; CloudFormation's short tags (`!Ref`, `!GetAtt`, `!Sub`, ...) are kept
/// as tagged values and only the ones the gateway needs are ever resolved.
#[derive(Debug, Clone)]
pub struct Template {
    root: Value,
}

/// One route of the HTTP API and the function behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// `GET /events/{eventId}/messages`, `ANY /{proxy+}` or `$default`.
    pub route_key: String,
    /// The function's logical id in the template.
    pub logical_id: String,
    /// The name `cargo lambda watch` serves it under (its binary, `BuildProperties.Binary`).
    pub function: String,
    /// The authorizer guarding it; `None` for `Auth: {Authorizer: NONE}`.
    pub authorizer: Option<String>,
    /// The route's `AuthorizationScopes`: a token must carry one of them.
    pub scopes: Vec<String>,
}

/// A JWT authorizer's configuration (`JwtConfiguration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuthorizerSpec {
    pub name: String,
    pub issuer: String,
    pub audience: Vec<String>,
}

/// The HTTP API's `CorsConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsSpec {
    pub allow_origins: Vec<String>,
    pub allow_credentials: bool,
    pub allow_headers: Vec<String>,
    pub allow_methods: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age: Option<u64>,
}

/// The stage an HTTP API serves at its root.
pub const DEFAULT_STAGE: &str = "$default";

/// A stage name API Gateway accepts: `$default`, or 1-128 letters, digits, `-` and `_`.
fn valid_stage_name(name: &str) -> bool {
    name == DEFAULT_STAGE
        || (!name.is_empty()
            && name.len() <= 128
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

impl HttpApiSpec {
    /// The path within the API of a request for `path`, or `None` when `path` is not under the
    /// API's stage (API Gateway answers those 404 without looking at any route).
    pub fn path_in_stage<'p>(&self, path: &'p str) -> Option<&'p str> {
        if self.stage == DEFAULT_STAGE {
            return Some(path);
        }
        match path.strip_prefix('/')?.strip_prefix(self.stage.as_str())? {
            "" => Some("/"),
            rest if rest.starts_with('/') => Some(rest),
            _ => None,
        }
    }

    /// The path prefix clients call the API at: `/v1`, or empty for `$default`.
    pub fn base_path(&self) -> String {
        if self.stage == DEFAULT_STAGE {
            String::new()
        } else {
            format!("/{}", self.stage)
        }
    }
}

/// Everything the gateway serves, resolved.
#[derive(Debug, Clone)]
pub struct HttpApiSpec {
    pub logical_id: String,
    /// The stage the API is served at (`StageName`): a named one is the first segment of every
    /// URL (`/v1/...`); `$default` (SAM's, without `StageName`) serves at the root.
    pub stage: String,
    pub routes: Vec<RouteSpec>,
    pub authorizers: Vec<JwtAuthorizerSpec>,
    pub cors: Option<CorsSpec>,
}

impl Template {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let root: Value = serde_yaml_ng::from_str(text)?;
        if !root.is_mapping() {
            bail!("a template is a mapping");
        }
        Ok(Self { root })
    }

    /// Parameter values: each declared parameter's default, replaced by `overrides` (samconfig,
    /// then flags). Overrides naming no declared parameter are refused, as CloudFormation does.
    pub fn parameters(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let mut values = BTreeMap::new();
        let declared = self.root.get("Parameters").and_then(Value::as_mapping);
        if let Some(declared) = declared {
            for (name, spec) in declared {
                let (Some(name), Some(default)) = (name.as_str(), spec.get("Default")) else {
                    continue;
                };
                values.insert(name.to_owned(), scalar_text(default).unwrap_or_default());
            }
        }
        for (name, value) in overrides {
            let known = declared.is_some_and(|d| d.contains_key(name.as_str()));
            if !known {
                bail!("parameter {name}: the template declares no such parameter");
            }
            values.insert(name.clone(), value.clone());
        }
        Ok(values)
    }

    /// The HTTP API (the template's one `AWS::Serverless::HttpApi`, or the one named `api_id`)
    /// with its routes, authorizers and CORS, parameters resolved.
    pub fn http_api(
        &self,
        api_id: Option<&str>,
        parameters: &BTreeMap<String, String>,
    ) -> anyhow::Result<HttpApiSpec> {
        let resolver = Resolver {
            template: self,
            parameters,
        };
        let resources = self
            .root
            .get("Resources")
            .and_then(Value::as_mapping)
            .context("the template has no Resources")?;
        let apis: Vec<(&str, &Value)> = resources
            .iter()
            .filter(|(_, r)| {
                r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::HttpApi")
            })
            .filter_map(|(name, r)| name.as_str().map(|n| (n, r)))
            .filter(|(name, _)| api_id.is_none_or(|id| id == *name))
            .collect();
        let [(api_name, api)] = apis.as_slice() else {
            bail!(
                "expected one AWS::Serverless::HttpApi{}, found {}",
                api_id.map(|id| format!(" named {id}")).unwrap_or_default(),
                apis.len()
            );
        };
        let properties = api.get("Properties");
        let stage = match properties.and_then(|p| p.get("StageName")) {
            Some(name) => resolver.string(name).context("StageName")?,
            None => DEFAULT_STAGE.to_owned(),
        };
        if !valid_stage_name(&stage) {
            bail!(
                "StageName {stage:?}: API Gateway allows letters, digits, '-' and '_' (or $default)"
            );
        }
        let auth = properties.and_then(|p| p.get("Auth"));
        let default_authorizer = auth
            .and_then(|a| a.get("DefaultAuthorizer"))
            .map(|v| resolver.string(v))
            .transpose()?;

        let mut authorizers = Vec::new();
        if let Some(map) = auth
            .and_then(|a| a.get("Authorizers"))
            .and_then(Value::as_mapping)
        {
            for (name, spec) in map {
                let name = name.as_str().context("authorizer name")?.to_owned();
                let jwt = spec.get("JwtConfiguration").with_context(|| {
                    format!("authorizer {name}: only JWT authorizers are served")
                })?;
                let issuer = resolver
                    .string(
                        jwt.get("issuer")
                            .with_context(|| format!("authorizer {name}: issuer"))?,
                    )
                    .with_context(|| format!("authorizer {name}: issuer"))?;
                let audience = match jwt.get("audience") {
                    Some(a) => resolver.strings(a)?,
                    None => Vec::new(),
                };
                authorizers.push(JwtAuthorizerSpec {
                    name,
                    issuer,
                    audience,
                });
            }
        }

        let cors = match properties.and_then(|p| p.get("CorsConfiguration")) {
            None => None,
            Some(Value::Bool(false)) => None,
            // `CorsConfiguration: true` is SAM's shorthand for every origin, header and method.
            Some(Value::Bool(true)) => Some(CorsSpec {
                allow_origins: vec!["*".into()],
                allow_headers: vec!["*".into()],
                allow_methods: vec!["*".into()],
                ..CorsSpec::default()
            }),
            Some(cors) => Some(resolver.cors(cors)?),
        };

        let mut routes = Vec::new();
        for (logical_id, resource) in resources {
            if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
                continue;
            }
            let logical_id = logical_id.as_str().context("resource name")?;
            let function = resource
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Value::as_str)
                .unwrap_or(logical_id)
                .to_owned();
            let Some(events) = resource
                .get("Properties")
                .and_then(|p| p.get("Events"))
                .and_then(Value::as_mapping)
            else {
                continue;
            };
            for (event_name, event) in events {
                if event.get("Type").and_then(Value::as_str) != Some("HttpApi") {
                    continue;
                }
                let props = event.get("Properties");
                let what = || {
                    format!(
                        "{logical_id}.{}",
                        event_name.as_str().unwrap_or("(unnamed event)")
                    )
                };
                // An event without ApiId belongs to SAM's implicit API, which this template
                // does not have; one naming another API is not this API's route.
                match props.and_then(|p| p.get("ApiId")) {
                    Some(id) if resolver.ref_name(id) == Some(api_name) => {}
                    _ => continue,
                }
                let method = match props.and_then(|p| p.get("Method")) {
                    Some(m) => resolver.string(m).with_context(what)?.to_ascii_uppercase(),
                    None => "ANY".to_owned(),
                };
                let path = match props.and_then(|p| p.get("Path")) {
                    Some(p) => resolver.string(p).with_context(what)?,
                    None => "$default".to_owned(),
                };
                let route_auth = props.and_then(|p| p.get("Auth"));
                let authorizer = match route_auth.and_then(|a| a.get("Authorizer")) {
                    Some(a) => match resolver.string(a).with_context(what)?.as_str() {
                        "NONE" => None,
                        name => Some(name.to_owned()),
                    },
                    None => default_authorizer.clone(),
                };
                let scopes = match route_auth.and_then(|a| a.get("AuthorizationScopes")) {
                    Some(s) => resolver.strings(s).with_context(what)?,
                    None => Vec::new(),
                };
                if let Some(name) = &authorizer
                    && !authorizers.iter().any(|a| &a.name == name)
                {
                    bail!("{}: unknown authorizer {name}", what());
                }
                let method = if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
                    "ANY".to_owned()
                } else {
                    method
                };
                let route_key = if path == "$default" {
                    path
                } else {
                    format!("{method} {path}")
                };
                routes.push(RouteSpec {
                    route_key,
                    logical_id: logical_id.to_owned(),
                    function: function.clone(),
                    authorizer,
                    scopes,
                });
            }
        }
        Ok(HttpApiSpec {
            logical_id: (*api_name).to_owned(),
            stage,
            routes,
            authorizers,
            cors,
        })
    }
}

/// Resolves the few intrinsic functions API properties use: `Ref` of a parameter, `Fn::Split`,
/// `Fn::Join`, `Fn::Sub` over parameters, in short or long form.
struct Resolver<'a> {
    template: &'a Template,
    parameters: &'a BTreeMap<String, String>,
}

/// A list-typed parameter (`CommaDelimitedList`, `List<...>`) resolves to a list.
fn is_list_parameter(template: &Template, name: &str) -> bool {
    template
        .root
        .get("Parameters")
        .and_then(|p| p.get(name))
        .and_then(|p| p.get("Type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t == "CommaDelimitedList" || t.starts_with("List<"))
}

#[derive(Debug)]
enum Resolved {
    Text(String),
    List(Vec<String>),
}

impl Resolver<'_> {
    /// `(function, argument)` of an intrinsic, whichever form it was written in.
    fn intrinsic(value: &Value) -> Option<(String, &Value)> {
        match value {
            Value::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let name = tag.trim_start_matches('!');
                let long = if name == "Ref" {
                    "Ref".to_owned()
                } else {
                    format!("Fn::{name}")
                };
                Some((long, &tagged.value))
            }
            Value::Mapping(map) if map.len() == 1 => {
                let (key, inner) = map.iter().next()?;
                let key = key.as_str()?;
                (key == "Ref" || key.starts_with("Fn::")).then(|| (key.to_owned(), inner))
            }
            _ => None,
        }
    }

    fn ref_name<'v>(&self, value: &'v Value) -> Option<&'v str> {
        match Self::intrinsic(value)? {
            (f, inner) if f == "Ref" => inner.as_str(),
            _ => None,
        }
    }

    fn resolve(&self, value: &Value) -> anyhow::Result<Resolved> {
        if let Some(text) = scalar_text(value) {
            return Ok(Resolved::Text(text));
        }
        if let Value::Sequence(items) = value {
            let mut out = Vec::new();
            for item in items {
                match self.resolve(item)? {
                    Resolved::Text(t) => out.push(t),
                    Resolved::List(l) => out.extend(l),
                }
            }
            return Ok(Resolved::List(out));
        }
        let (function, inner) =
            Self::intrinsic(value).ok_or_else(|| anyhow!("expected a value, found {value:?}"))?;
        match function.as_str() {
            "Ref" => {
                let name = inner.as_str().context("Ref of a name")?;
                let value = self.parameters.get(name).with_context(|| {
                    format!(
                        "Ref {name}: no value for this parameter (give it with --param {name}=...)"
                    )
                })?;
                if is_list_parameter(self.template, name) {
                    Ok(Resolved::List(
                        value.split(',').map(|s| s.trim().to_owned()).collect(),
                    ))
                } else {
                    Ok(Resolved::Text(value.clone()))
                }
            }
            "Fn::Split" => {
                let [delimiter, source] = two(inner)?;
                let delimiter = scalar_text(delimiter).context("Fn::Split delimiter")?;
                let source = self.string(source)?;
                Ok(Resolved::List(
                    source
                        .split(delimiter.as_str())
                        .map(str::to_owned)
                        .collect(),
                ))
            }
            "Fn::Join" => {
                let [delimiter, items] = two(inner)?;
                let delimiter = scalar_text(delimiter).context("Fn::Join delimiter")?;
                Ok(Resolved::Text(self.strings(items)?.join(&delimiter)))
            }
            "Fn::Sub" => {
                let text = inner
                    .as_str()
                    .context("Fn::Sub of a string (the list form is not served)")?;
                Ok(Resolved::Text(self.substitute(text)?))
            }
            // Only the branch the condition picks is resolved, as CloudFormation does.
            "Fn::If" => {
                let (condition, branches) = match inner.as_sequence().map(Vec::as_slice) {
                    Some([c, yes, no]) => (c, [yes, no]),
                    _ => bail!("Fn::If: expected [condition, value if true, value if false]"),
                };
                let name = scalar_text(condition).context("Fn::If: a condition name")?;
                let branch = branches[usize::from(!self.condition(&name)?)];
                self.resolve(branch)
            }
            other => bail!("{other} cannot be resolved locally"),
        }
    }

    /// A named condition of the template's `Conditions`.
    fn condition(&self, name: &str) -> anyhow::Result<bool> {
        let definition = self
            .template
            .root
            .get("Conditions")
            .and_then(|c| c.get(name))
            .with_context(|| format!("condition {name} is not in Conditions"))?;
        self.truth(definition)
            .with_context(|| format!("condition {name}"))
    }

    /// A condition function (`Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`, `Condition`).
    fn truth(&self, value: &Value) -> anyhow::Result<bool> {
        if let Value::Mapping(map) = value
            && let Some(name) = map.get("Condition").and_then(Value::as_str)
        {
            return self.condition(name);
        }
        let (function, inner) = Self::intrinsic(value)
            .ok_or_else(|| anyhow!("expected a condition, found {value:?}"))?;
        let operands = || -> anyhow::Result<Vec<bool>> {
            inner
                .as_sequence()
                .context("a list of conditions")?
                .iter()
                .map(|c| self.truth(c))
                .collect()
        };
        match function.as_str() {
            "Fn::Condition" => self.condition(inner.as_str().context("!Condition of a name")?),
            "Fn::Equals" => {
                let [a, b] = two(inner)?;
                Ok(self.strings(a)? == self.strings(b)?)
            }
            "Fn::Not" => match operands()?.as_slice() {
                [one] => Ok(!one),
                _ => bail!("Fn::Not takes one condition"),
            },
            "Fn::And" => Ok(operands()?.into_iter().all(|c| c)),
            "Fn::Or" => Ok(operands()?.into_iter().any(|c| c)),
            other => bail!("{other} is not a condition function"),
        }
    }

    fn substitute(&self, text: &str) -> anyhow::Result<String> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').context("Fn::Sub: unclosed ${")?;
            let name = &after[..end];
            let value = self
                .parameters
                .get(name)
                .with_context(|| format!("Fn::Sub: ${{{name}}} is not a parameter with a value"))?;
            out.push_str(value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn string(&self, value: &Value) -> anyhow::Result<String> {
        match self.resolve(value)? {
            Resolved::Text(t) => Ok(t),
            Resolved::List(_) => bail!("expected a string, found a list"),
        }
    }

    fn strings(&self, value: &Value) -> anyhow::Result<Vec<String>> {
        Ok(match self.resolve(value)? {
            Resolved::Text(t) => vec![t],
            Resolved::List(l) => l,
        })
    }

    fn cors(&self, cors: &Value) -> anyhow::Result<CorsSpec> {
        let list = |key: &str| -> anyhow::Result<Vec<String>> {
            match cors.get(key) {
                Some(v) => self
                    .strings(v)
                    .with_context(|| format!("CorsConfiguration.{key}")),
                None => Ok(Vec::new()),
            }
        };
        let allow_credentials = match cors.get("AllowCredentials") {
            Some(v) => self.string(v)?.eq_ignore_ascii_case("true"),
            None => false,
        };
        let max_age = match cors.get("MaxAge") {
            Some(v) => Some(
                self.string(v)?
                    .parse()
                    .context("CorsConfiguration.MaxAge")?,
            ),
            None => None,
        };
        Ok(CorsSpec {
            allow_origins: list("AllowOrigins")?,
            allow_credentials,
            allow_headers: list("AllowHeaders")?,
            allow_methods: list("AllowMethods")?,
            expose_headers: list("ExposeHeaders")?,
            max_age,
        })
    }
}

fn two(value: &Value) -> anyhow::Result<[&Value; 2]> {
    match value.as_sequence().map(Vec::as_slice) {
        Some([a, b]) => Ok([a, b]),
        _ => bail!("expected a list of two"),
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `parameter_overrides` of one samconfig.toml environment's `deploy` (or `global`) section,
/// as SAM reads it: `Key=Value` pairs separated by spaces, values optionally double-quoted.
pub fn samconfig_parameters(
    text: &str,
    environment: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let config: toml::Table = toml::from_str(text).context("samconfig.toml")?;
    let mut out = BTreeMap::new();
    let Some(env) = config.get(environment).and_then(toml::Value::as_table) else {
        return Ok(out);
    };
    for section in ["global", "deploy"] {
        let overrides = env
            .get(section)
            .and_then(|s| s.get("parameters"))
            .and_then(|p| p.get("parameter_overrides"));
        let pairs: Vec<String> = match overrides {
            Some(toml::Value::String(s)) => split_overrides(s),
            Some(toml::Value::Array(items)) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            _ => continue,
        };
        for pair in pairs {
            let (key, value) = pair.split_once('=').with_context(|| {
                format!("samconfig parameter_overrides: {pair:?} is not Key=Value")
            })?;
            out.insert(key.to_owned(), value.trim_matches('"').to_owned());
        }
    }
    Ok(out)
}

fn split_overrides(text: &str) -> Vec<String> {
    let mut pairs = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    pairs.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        pairs.push(current);
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Issuer: {Type: String}
  Origins: {Type: CommaDelimitedList, Default: "https://a.example,https://b.example"}
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
        Authorizers:
          Jwt:
            JwtConfiguration:
              issuer: !Sub "${Issuer}"
              audience: [!Ref Issuer, fixed]
      CorsConfiguration:
        AllowOrigins: !Ref Origins
        AllowCredentials: true
        AllowMethods: [GET]
        MaxAge: 60
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: the-fn}}
    Properties:
      Events:
        A: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: get, Path: "/a/{id}"}}
        B: {Type: HttpApi, Properties: {ApiId: !Ref Api, Method: POST, Path: /b, Auth: {Authorizer: NONE}}}
        C: {Type: HttpApi, Properties: {ApiId: !Ref Api}}
        Q: {Type: SQS, Properties: {Queue: !GetAtt Q.Arn}}
"#;

    #[test]
    fn reads_routes_authorizers_and_cors_with_short_tags() -> anyhow::Result<()> {
        let template = Template::parse(TEMPLATE)?;
        let overrides = BTreeMap::from([("Issuer".to_owned(), "https://id.example".to_owned())]);
        let parameters = template.parameters(&overrides)?;
        let api = template.http_api(None, &parameters)?;
        let keys: Vec<_> = api.routes.iter().map(|r| r.route_key.as_str()).collect();
        assert_eq!(keys, ["GET /a/{id}", "POST /b", "$default"]);
        assert_eq!(api.routes[0].function, "the-fn");
        assert_eq!(api.routes[0].authorizer.as_deref(), Some("Jwt"));
        assert_eq!(api.routes[1].authorizer, None);
        assert_eq!(api.authorizers[0].issuer, "https://id.example");
        assert_eq!(api.authorizers[0].audience, ["https://id.example", "fixed"]);
        let cors = api.cors.context("cors")?;
        assert_eq!(
            cors.allow_origins,
            ["https://a.example", "https://b.example"]
        );
        assert!(cors.allow_credentials);
        assert_eq!(cors.max_age, Some(60));
        Ok(())
    }

    #[test]
    fn the_stage_is_read_and_paths_are_taken_within_it() -> anyhow::Result<()> {
        let overrides = BTreeMap::from([("Issuer".to_owned(), "https://id.example".to_owned())]);
        let template = Template::parse(TEMPLATE)?;
        let api = template.http_api(None, &template.parameters(&overrides)?)?;
        assert_eq!(api.stage, "$default");
        assert_eq!(api.base_path(), "");
        assert_eq!(api.path_in_stage("/a/1"), Some("/a/1"));

        let staged = TEMPLATE.replace(
            "    Properties:\n      Auth:",
            "    Properties:\n      StageName: !Ref Version\n      Auth:",
        );
        let staged = staged.replace(
            "Parameters:\n",
            "Parameters:\n  Version: {Type: String, Default: v1}\n",
        );
        let template = Template::parse(&staged)?;
        let api = template.http_api(None, &template.parameters(&overrides)?)?;
        assert_eq!(api.stage, "v1");
        assert_eq!(api.base_path(), "/v1");
        assert_eq!(api.path_in_stage("/v1/a/1"), Some("/a/1"));
        assert_eq!(api.path_in_stage("/v1"), Some("/"));
        for outside in ["/a/1", "/v1a/1", "/v2/a/1", "/", "", "v1/a"] {
            assert_eq!(api.path_in_stage(outside), None, "{outside}");
        }

        let bad = BTreeMap::from([
            ("Issuer".to_owned(), "https://id.example".to_owned()),
            ("Version".to_owned(), "v 1/x".to_owned()),
        ]);
        assert!(
            template
                .http_api(None, &template.parameters(&bad)?)
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn fn_if_resolves_the_branch_its_condition_picks() -> anyhow::Result<()> {
        let template = Template::parse(
            r#"
Parameters:
  Own: {Type: String, Default: "false"}
  Issuer: {Type: String, Default: ""}
  Audience: {Type: CommaDelimitedList, Default: "a,b"}
Conditions:
  OwnPool: !Equals [!Ref Own, "true"]
  External: !Not [!Condition OwnPool]
  Both: !And [{Condition: External}, !Or [!Equals [!Ref Issuer, x], !Not [!Equals [!Ref Issuer, ""]]]]
Resources:
  Pool: {Type: AWS::Cognito::UserPool}
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        Authorizers:
          Jwt:
            JwtConfiguration:
              issuer: !If [OwnPool, !Sub "https://idp/${Pool}", !If [Both, !Ref Issuer, none]]
              audience: !If [OwnPool, [!Ref Pool], !Ref Audience]
"#,
        )?;
        let api = |overrides: &[(&str, &str)]| -> anyhow::Result<JwtAuthorizerSpec> {
            let overrides = overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            let parameters = template.parameters(&overrides)?;
            let mut api = template.http_api(None, &parameters)?;
            api.authorizers.pop().context("authorizer")
        };
        let external = api(&[("Issuer", "https://id.example")])?;
        assert_eq!(external.issuer, "https://id.example");
        assert_eq!(external.audience, ["a", "b"]);
        assert_eq!(api(&[])?.issuer, "none");
        // The branch not taken names resources the gateway cannot know; the taken one is read.
        let own = api(&[("Own", "true")]).expect_err("a resource cannot be resolved locally");
        assert!(format!("{own:#}").contains("Pool"), "{own:#}");
        Ok(())
    }

    #[test]
    fn unknown_override_and_missing_parameter_are_refused() -> anyhow::Result<()> {
        let template = Template::parse(TEMPLATE)?;
        let unknown = BTreeMap::from([("Nope".to_owned(), "x".to_owned())]);
        assert!(template.parameters(&unknown).is_err());
        let parameters = template.parameters(&BTreeMap::new())?;
        assert!(template.http_api(None, &parameters).is_err());
        Ok(())
    }

    #[test]
    fn samconfig_overrides_are_split_like_sam() -> anyhow::Result<()> {
        let text = r#"
[default.deploy.parameters]
parameter_overrides = "Stage=dev JwtIssuer=https://auth.example.com/ Note=\"two words\""
"#;
        let p = samconfig_parameters(text, "default")?;
        assert_eq!(p["JwtIssuer"], "https://auth.example.com/");
        assert_eq!(p["Note"], "two words");
        assert!(samconfig_parameters(text, "prod")?.is_empty());
        Ok(())
    }
}
