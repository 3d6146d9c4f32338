//! Rendering user-written templates with minijinja: strict about undefined variables (a missing
//! value is an error, never an empty gap), bounded by fuel (a template cannot loop forever), and
//! HTML-escaping values in email bodies.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::domain::Channel;
use crate::domain::template::TemplateContent;

/// Enough for any sensible message; a template that needs more is looping.
const FUEL: u64 = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{part} does not parse: {message}")]
    Syntax { part: &'static str, message: String },
    #[error("{part} uses undeclared variables: {}", names.iter().cloned().collect::<Vec<_>>().join(", "))]
    Undeclared {
        part: &'static str,
        names: BTreeSet<String>,
    },
    #[error("{part} failed to render: {message}")]
    Render { part: &'static str, message: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rendered {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub body: String,
}

/// Renders templates. Each rendering gets its own environment so template sources can be
/// borrowed from the configuration without copying.
#[derive(Debug, Default, Clone, Copy)]
pub struct Renderer;

fn environment<'source>() -> Environment<'source> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env
}

impl Renderer {
    pub fn new() -> Self {
        Self
    }

    /// Renders `content` for `channel` with `variables`, the merged brand and the template's own
    /// assets and design settings. Every variable the template reads must be declared.
    pub fn render(
        self,
        channel: Channel,
        content: &TemplateContent,
        variables: &BTreeMap<String, String>,
        brand: &BTreeMap<&str, &str>,
    ) -> Result<Rendered, RenderError> {
        let declared: BTreeSet<&str> = content.variables.iter().map(|v| v.name.as_str()).collect();
        let mut context: BTreeMap<&str, minijinja::Value> = variables
            .iter()
            .filter(|(k, _)| declared.contains(k.as_str()))
            .map(|(k, v)| (k.as_str(), minijinja::Value::from(v.as_str())))
            .collect();
        // Optional variables render empty when not given; required ones stay undefined, which
        // strict rendering turns into an error naming them.
        for v in content.variables.iter().filter(|v| !v.required) {
            context
                .entry(v.name.as_str())
                .or_insert_with(|| minijinja::Value::from(""));
        }
        context.insert("brand", minijinja::Value::from_serialize(brand));
        context.insert(
            "assets",
            minijinja::Value::from_serialize(&content.brand_assets),
        );
        context.insert(
            "design",
            minijinja::Value::from_serialize(&content.design_settings),
        );

        let subject = match &content.subject {
            Some(s) => Some(self.render_part("subject", "subject.txt", s, &declared, &context)?),
            None => None,
        };
        let body_name = if channel == Channel::Email {
            "body.html"
        } else {
            "body.txt"
        };
        let body = self.render_part("body", body_name, &content.body, &declared, &context)?;
        Ok(Rendered { subject, body })
    }

    fn render_part(
        self,
        part: &'static str,
        name: &'static str,
        source: &str,
        declared: &BTreeSet<&str>,
        context: &BTreeMap<&str, minijinja::Value>,
    ) -> Result<String, RenderError> {
        let env = environment();
        let template =
            env.template_from_named_str(name, source)
                .map_err(|e| RenderError::Syntax {
                    part,
                    message: describe(&e),
                })?;
        let undeclared: BTreeSet<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| {
                !declared.contains(v.as_str())
                    && !crate::domain::template::RESERVED_VARIABLES.contains(&v.as_str())
                    && !env.globals().any(|(name, _)| name == v)
            })
            .collect();
        if !undeclared.is_empty() {
            return Err(RenderError::Undeclared {
                part,
                names: undeclared,
            });
        }
        template.render(context).map_err(|e| {
            let missing: Vec<String> = template
                .undeclared_variables(true)
                .into_iter()
                .filter(|name| !resolves(name, context))
                .collect();
            let message = if e.kind() == minijinja::ErrorKind::UndefinedError && !missing.is_empty()
            {
                format!("uses {} without a value", missing.join(", "))
            } else {
                describe(&e)
            };
            RenderError::Render { part, message }
        })
    }
}

/// Whether a (possibly dotted) variable name has a value in the rendering context.
fn resolves(name: &str, context: &BTreeMap<&str, minijinja::Value>) -> bool {
    let mut parts = name.split('.');
    let Some(mut value) = parts.next().and_then(|top| context.get(top)).cloned() else {
        return false;
    };
    for part in parts {
        match value.get_attr(part) {
            Ok(v) if !v.is_undefined() => value = v,
            _ => return false,
        }
    }
    true
}

/// The error's own message and line, without the template source (which may hold personal data).
fn describe(e: &minijinja::Error) -> String {
    match (e.detail(), e.line()) {
        (Some(detail), Some(line)) => format!("{} (line {line}): {detail}", e.kind()),
        (Some(detail), None) => format!("{}: {detail}", e.kind()),
        (None, Some(line)) => format!("{} (line {line})", e.kind()),
        (None, None) => e.kind().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::template::VariableDecl;

    fn content(subject: Option<&str>, body: &str, vars: &[&str]) -> TemplateContent {
        TemplateContent {
            subject: subject.map(str::to_owned),
            body: body.to_owned(),
            variables: vars
                .iter()
                .map(|n| VariableDecl {
                    name: (*n).into(),
                    required: true,
                    sample: format!("<{n}>"),
                    description: None,
                })
                .collect(),
            brand_assets: BTreeMap::new(),
            design_settings: BTreeMap::new(),
        }
    }

    #[test]
    fn email_bodies_are_escaped_subjects_are_not() {
        let c = content(
            Some("Hi {{ name }}"),
            "<p>Hello {{ name }} from {{ brand.display_name }}</p>",
            &["name"],
        );
        let brand = BTreeMap::from([("display_name", "Acme & Co")]);
        let out = Renderer::new()
            .render(Channel::Email, &c, &c.samples(), &brand)
            .expect("renders");
        assert_eq!(out.subject.as_deref(), Some("Hi <name>"));
        assert_eq!(out.body, "<p>Hello &lt;name&gt; from Acme &amp; Co</p>");
    }

    #[test]
    fn undeclared_and_missing_variables_fail() {
        let r = Renderer::new();
        let c = content(None, "Hi {{ name }} {{ seat }}", &["name"]);
        assert!(matches!(
            r.render(Channel::Sms, &c, &c.samples(), &BTreeMap::new()),
            Err(RenderError::Undeclared { .. })
        ));
        let c = content(None, "Hi {{ name }}", &["name"]);
        assert!(matches!(
            r.render(Channel::Sms, &c, &BTreeMap::new(), &BTreeMap::new()),
            Err(RenderError::Render { .. })
        ));
        let c = content(None, "Hi {{ brand.display_name }}", &[]);
        let err = r
            .render(Channel::Sms, &c, &BTreeMap::new(), &BTreeMap::new())
            .map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err("body failed to render: uses brand.display_name without a value".to_owned())
        );
    }

    #[test]
    fn optional_variables_render_empty() {
        let mut c = content(None, "Hi {{ name }}{{ seat }}", &["name", "seat"]);
        c.variables[1].required = false;
        let vars = BTreeMap::from([("name".to_owned(), "Ada".to_owned())]);
        let out = Renderer::new()
            .render(Channel::Sms, &c, &vars, &BTreeMap::new())
            .expect("renders");
        assert_eq!(out.body, "Hi Ada");
        c.variables[1].required = true;
        let err = Renderer::new()
            .render(Channel::Sms, &c, &vars, &BTreeMap::new())
            .map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err("body failed to render: uses seat without a value".to_owned())
        );
    }

    #[test]
    fn endless_templates_run_out_of_fuel() {
        let c = content(
            None,
            "{% for i in range(5000) %}{% for j in range(5000) %}x{% endfor %}{% endfor %}",
            &[],
        );
        assert!(matches!(
            Renderer::new().render(Channel::Sms, &c, &BTreeMap::new(), &BTreeMap::new()),
            Err(RenderError::Render { .. })
        ));
    }

    #[test]
    fn syntax_errors_are_reported() {
        let c = content(None, "Hi {{ name ", &["name"]);
        assert!(matches!(
            Renderer::new().render(Channel::Sms, &c, &c.samples(), &BTreeMap::new()),
            Err(RenderError::Syntax { .. })
        ));
    }
}
