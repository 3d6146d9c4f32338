//! Brand: how a tenant's messages look. The tenant sets defaults; an event may override any
//! single field and drop the override again to inherit.

use serde::{Deserialize, Serialize};

use super::validation::{FieldError, text};

/// Brand values; at the event layer a `Some` is an override of the tenant's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Brand {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub font_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_email: Option<String>,
    /// The sender's legal name, shown at the foot of every email (marketing email needs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_name: Option<String>,
    /// The sender's postal address, shown beside the legal name (marketing email needs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_address: Option<String>,
}

/// The field names, in display order, with accessors: used by resolution to merge field by field.
pub type BrandField = (
    &'static str,
    fn(&Brand) -> &Option<String>,
    fn(&mut Brand) -> &mut Option<String>,
);

pub const BRAND_FIELDS: [BrandField; 10] = [
    ("display_name", |b| &b.display_name, |b| &mut b.display_name),
    ("logo_url", |b| &b.logo_url, |b| &mut b.logo_url),
    (
        "primary_color",
        |b| &b.primary_color,
        |b| &mut b.primary_color,
    ),
    (
        "secondary_color",
        |b| &b.secondary_color,
        |b| &mut b.secondary_color,
    ),
    ("font_family", |b| &b.font_family, |b| &mut b.font_family),
    ("footer_text", |b| &b.footer_text, |b| &mut b.footer_text),
    ("website_url", |b| &b.website_url, |b| &mut b.website_url),
    (
        "support_email",
        |b| &b.support_email,
        |b| &mut b.support_email,
    ),
    ("legal_name", |b| &b.legal_name, |b| &mut b.legal_name),
    (
        "postal_address",
        |b| &b.postal_address,
        |b| &mut b.postal_address,
    ),
];

/// The brand fields every marketing email must carry (CAN-SPAM, the EU's e-commerce directive,
/// Kenya's and Zambia's data protection rules): who sends it and where they can be reached.
pub const MARKETING_IDENTITY: [&str; 2] = ["legal_name", "postal_address"];

impl Brand {
    pub fn check(&self) -> Result<(), FieldError> {
        for (name, get, _) in BRAND_FIELDS {
            let Some(value) = get(self) else { continue };
            let field = name.to_owned();
            text(&field, value, 1024)?;
            match name {
                "primary_color" | "secondary_color" => {
                    let ok = value.len() == 7
                        && value.starts_with('#')
                        && value[1..].chars().all(|c| c.is_ascii_hexdigit());
                    if !ok {
                        return Err(FieldError::invalid(
                            field,
                            format!("{name} must be a #rrggbb colour"),
                        ));
                    }
                }
                "logo_url" | "website_url" if !value.starts_with("https://") => {
                    return Err(FieldError::invalid(
                        field,
                        format!("{name} must be an https URL"),
                    ));
                }
                "support_email" => {
                    super::validation::EmailAddress::parse(value)
                        .map_err(|m| FieldError::invalid(field, m))?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brand_values_are_checked() {
        let ok = Brand {
            primary_color: Some("#1a2B3c".into()),
            logo_url: Some("https://cdn.acme.example/l.png".into()),
            ..Brand::default()
        };
        assert!(ok.check().is_ok());
        let bad = Brand {
            primary_color: Some("red".into()),
            ..Brand::default()
        };
        assert_eq!(
            bad.check().map_err(|e| e.field),
            Err("primary_color".into())
        );
        let insecure = Brand {
            logo_url: Some("http://x.example/l.png".into()),
            ..Brand::default()
        };
        assert!(insecure.check().is_err());
    }
}
