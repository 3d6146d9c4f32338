//! Templates: what a message of a category says on a channel. They exist at three layers,
//! platform (global compliance templates), tenant and event, and every change is a new
//! immutable version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::catalogue::{Category, Channel};
use super::validation::{FieldError, text};
use super::variable_type::{FieldDecl, ItemType, Kind, Shape, is_identifier, undeclared};
use crate::domain::ErrorCode;

pub const MAX_BODY_CHARS: usize = 100_000;
pub const MAX_SUBJECT_CHARS: usize = 998;
pub const MAX_VARIABLES: usize = 50;
/// Longest sample value, in bytes of JSON.
pub const MAX_SAMPLE_BYTES: usize = 4096;
/// Names templates may not declare: Herald puts these into every rendering context itself.
pub const RESERVED_VARIABLES: [&str; 3] = ["brand", "design", "assets"];

/// A variable a template uses: its type (text unless declared otherwise; see [`Kind`]) and the
/// sample value previews and wizard validation render with (made from the type when not given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VariableDecl {
    pub name: String,
    #[serde(rename = "type", default, skip_serializing_if = "is_string")]
    pub kind: Kind,
    #[serde(default = "yes")]
    pub required: bool,
    /// A value of the declared type; one is made from the type when absent.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub sample: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A list's items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<ItemType>>,
    /// An object's fields.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldDecl>,
}

fn is_string(kind: &Kind) -> bool {
    *kind == Kind::String
}

impl VariableDecl {
    /// A text variable with a sample (the common case).
    pub fn text(name: &str, sample: &str) -> Self {
        Self {
            name: name.to_owned(),
            kind: Kind::String,
            required: true,
            sample: sample.into(),
            description: None,
            items: None,
            fields: Vec::new(),
        }
    }

    pub fn shape(&self) -> Shape<'_> {
        Shape::of(self.kind, self.items.as_deref(), &self.fields)
    }

    /// The declared sample, or one made from the type.
    pub fn sample_value(&self) -> serde_json::Value {
        if self.sample.is_null() {
            self.shape().sample(&self.name)
        } else {
            self.sample.clone()
        }
    }
}

fn yes() -> bool {
    true
}

/// The editable part of a template version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub body: String,
    #[serde(default)]
    pub variables: Vec<VariableDecl>,
    /// Named images or files the template refers to as `assets.<name>` (URLs).
    #[serde(default)]
    pub brand_assets: BTreeMap<String, String>,
    /// Layout choices the brand layout reads as `design.<name>` (colours, alignment...).
    #[serde(default)]
    pub design_settings: BTreeMap<String, String>,
    /// WhatsApp only: the templates registered at the providers that this version is sent as
    /// outside the 24-hour customer-service window (see [`super::whatsapp`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp: Option<super::whatsapp::WhatsappTemplates>,
}

impl TemplateContent {
    /// Checks the content for `channel`; the rendering check happens in wizard validation.
    pub fn check(&self, channel: Channel) -> Result<(), FieldError> {
        match (&self.subject, channel.has_subject()) {
            (Some(subject), true) => {
                text("subject", subject, MAX_SUBJECT_CHARS)?;
            }
            (None, true) => return Err(FieldError::required("subject")),
            (Some(_), false) => {
                return Err(FieldError::new(
                    ErrorCode::NotAllowed,
                    "subject",
                    format!("{channel} templates have no subject"),
                ));
            }
            (None, false) => {}
        }
        text("body", &self.body, MAX_BODY_CHARS)?;
        if self.variables.len() > MAX_VARIABLES {
            return Err(FieldError::new(
                ErrorCode::TooMany,
                "variables",
                format!("at most {MAX_VARIABLES} variables"),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, v) in self.variables.iter().enumerate() {
            let field = format!("variables[{i}].name");
            if !is_identifier(&v.name) {
                return Err(FieldError::invalid(
                    field,
                    "variable names are lower_snake_case identifiers",
                ));
            }
            if RESERVED_VARIABLES.contains(&v.name.as_str()) {
                return Err(FieldError::new(
                    ErrorCode::Reserved,
                    field,
                    format!("{} is provided by Herald", v.name),
                ));
            }
            if !seen.insert(v.name.as_str()) {
                return Err(FieldError::new(
                    ErrorCode::Duplicate,
                    field,
                    format!("{} is declared twice", v.name),
                ));
            }
            v.shape().check(&format!("variables[{i}]"))?;
            if !v.sample.is_null() {
                let at = format!("variables[{i}].sample");
                if v.sample.to_string().len() > MAX_SAMPLE_BYTES {
                    return Err(FieldError::new(
                        ErrorCode::TooLong,
                        at,
                        format!("samples are at most {MAX_SAMPLE_BYTES} bytes of JSON"),
                    ));
                }
                v.shape().check_value(&v.sample, &at)?;
            }
        }
        for (map, name) in [
            (&self.brand_assets, "brand_assets"),
            (&self.design_settings, "design_settings"),
        ] {
            if map.len() > 50 {
                return Err(FieldError::new(
                    ErrorCode::TooMany,
                    name,
                    format!("at most 50 {name}"),
                ));
            }
            if let Some((k, _)) = map
                .iter()
                .find(|(k, v)| k.is_empty() || k.len() > 64 || v.chars().count() > 2048)
            {
                return Err(FieldError::invalid(
                    format!("{name}.{k}"),
                    "keys are 1-64 characters, values at most 2048",
                ));
            }
        }
        match (&self.whatsapp, channel) {
            (Some(registered), Channel::Whatsapp) => registered.check(&self.variables)?,
            (Some(_), _) => {
                return Err(FieldError::new(
                    ErrorCode::NotAllowed,
                    "whatsapp",
                    format!("{channel} templates are not registered WhatsApp templates"),
                ));
            }
            (None, _) => {}
        }
        Ok(())
    }

    /// Checks the `variables` a send or preview gives against the declarations: each value of
    /// its declared type and (when `strict`, for sends naming one template) no undeclared name;
    /// a required variable left out is named when the template renders. Errors name `{base}.{name}` down to the wrong value
    /// (`recipients[2].variables.agenda[3].starts_at`).
    pub fn check_variables(
        &self,
        variables: &BTreeMap<String, serde_json::Value>,
        base: &str,
        strict: bool,
    ) -> Result<(), FieldError> {
        if strict
            && let Some(extra) = variables
                .keys()
                .find(|k| !self.variables.iter().any(|v| &v.name == *k))
        {
            return Err(undeclared(base, extra, "variable"));
        }
        for v in &self.variables {
            let at = format!("{base}.{}", v.name);
            if let Some(value) = variables.get(&v.name) {
                v.shape().check_value(value, &at)?;
            }
        }
        Ok(())
    }

    /// The sample values of the declared variables, for previews and validation.
    pub fn samples(&self) -> BTreeMap<String, serde_json::Value> {
        self.variables
            .iter()
            .map(|v| (v.name.clone(), v.sample_value()))
            .collect()
    }
}

/// Where a template version stands. Without approval a saved version is published at once;
/// with it (a tenant setting; always for platform templates) it is `submitted` until a second
/// person approves it, which publishes it, or rejects it. Only published versions are ever
/// used: resolution, completion and sends read the layer's current (published) version.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TemplateState {
    /// Waiting for a second person's review.
    Submitted,
    /// Refused by its reviewer (with a reason); never used.
    Rejected,
    /// In use: the layer's current version (until a later one is published). Versions saved
    /// before approvals existed are published.
    #[default]
    Published,
}

impl TemplateState {
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateState::Submitted => "submitted",
            TemplateState::Rejected => "rejected",
            TemplateState::Published => "published",
        }
    }
}

/// Who reviewed a submitted version, when, and why it was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Review {
    pub by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub at: OffsetDateTime,
    /// Why it was rejected (rejections only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Longest rejection reason, in characters.
pub const MAX_REASON_CHARS: usize = 1000;

/// Why a review cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewRefusal {
    /// Only a submitted version can be approved or rejected.
    NotSubmitted(TemplateState),
    /// Four eyes: the author of a version cannot approve it (withdrawing it, a rejection, is
    /// theirs to do).
    OwnVersion,
}

/// One immutable version of a template at one layer (its content never changes; its state
/// moves once, from submitted to published or rejected).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TemplateVersion {
    pub category: Category,
    pub channel: Channel,
    pub version: u32,
    #[serde(flatten)]
    pub content: TemplateContent,
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::domain::validation::Rfc3339Time")]
    pub created_at: OffsetDateTime,
    #[serde(default)]
    pub state: TemplateState,
    /// The approval or rejection of a version that was submitted for review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
}

impl TemplateVersion {
    /// This version approved (and so published) by `by` at `at`.
    pub fn approved(&self, by: &str, at: OffsetDateTime) -> Result<Self, ReviewRefusal> {
        self.reviewable()?;
        if self.created_by == by {
            return Err(ReviewRefusal::OwnVersion);
        }
        Ok(self.reviewed(TemplateState::Published, by, at, None))
    }

    /// This version rejected by `by` at `at` for `reason` (its author may withdraw it so).
    pub fn rejected(
        &self,
        by: &str,
        at: OffsetDateTime,
        reason: String,
    ) -> Result<Self, ReviewRefusal> {
        self.reviewable()?;
        Ok(self.reviewed(TemplateState::Rejected, by, at, Some(reason)))
    }

    fn reviewable(&self) -> Result<(), ReviewRefusal> {
        match self.state {
            TemplateState::Submitted => Ok(()),
            other => Err(ReviewRefusal::NotSubmitted(other)),
        }
    }

    fn reviewed(
        &self,
        state: TemplateState,
        by: &str,
        at: OffsetDateTime,
        reason: Option<String>,
    ) -> Self {
        Self {
            state,
            review: Some(Review {
                by: by.to_owned(),
                at,
                reason,
            }),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(subject: Option<&str>, vars: &[&str]) -> TemplateContent {
        TemplateContent {
            subject: subject.map(str::to_owned),
            body: "Hello {{ guest_name }}".into(),
            variables: vars.iter().map(|n| VariableDecl::text(n, "Ada")).collect(),
            brand_assets: BTreeMap::new(),
            design_settings: BTreeMap::new(),
            whatsapp: None,
        }
    }

    #[test]
    fn subjects_belong_to_email_only() {
        assert!(
            content(Some("Hi"), &["guest_name"])
                .check(Channel::Email)
                .is_ok()
        );
        assert_eq!(
            content(None, &[])
                .check(Channel::Email)
                .map_err(|e| e.field),
            Err("subject".into())
        );
        assert_eq!(
            content(Some("Hi"), &[])
                .check(Channel::Sms)
                .map_err(|e| e.code),
            Err(ErrorCode::NotAllowed)
        );
    }

    #[test]
    fn variables_are_identifiers_once_each() {
        assert_eq!(
            content(None, &["Guest"])
                .check(Channel::Sms)
                .map_err(|e| e.field),
            Err("variables[0].name".into())
        );
        assert_eq!(
            content(None, &["a", "a"])
                .check(Channel::Sms)
                .map_err(|e| e.code),
            Err(ErrorCode::Duplicate)
        );
        assert_eq!(
            content(None, &["brand"])
                .check(Channel::Sms)
                .map_err(|e| e.code),
            Err(ErrorCode::Reserved)
        );
    }
}

/// Where in a template's source something is: 1-based line and column (in characters).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}
