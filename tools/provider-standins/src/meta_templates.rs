//! Checking a WhatsApp template send (`"type": "template"`) against the registered template's
//! definition, as Cloud API does before accepting it: the template must exist in that language
//! and be approved, and the header, body and button parameters must match its placeholders in
//! number and format. On success the body text is filled in for the journal.
//!
//! What Meta documents (see the WhatsApp templates design reference): 132001 for a template that
//! does not exist in the language or is not approved, 132015 paused, 132016 disabled, 132000 for
//! a parameter count mismatch (details `body: number of localizable_params (2) does not match the
//! expected number of params (3)`), 132012 for a parameter whose format does not match. Which
//! code a wrong *named* parameter gets is not documented; the stand-in answers 132000.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::accounts::MetaTemplate;

/// Why a template send is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 404 / 132001: no such template in this language, or not approved.
    NotFound { name: String, language: String },
    /// 400 / 132015.
    Paused,
    /// 400 / 132016.
    Disabled,
    /// 400 / 132000, with the details.
    Count(String),
    /// 400 / 132012, with the details.
    Format(String),
    /// 400 / 100: the request itself is malformed.
    Invalid(String),
}

/// Whether the template may be sent at all, by its status.
pub(crate) fn sendable(template: &MetaTemplate) -> Result<(), Refusal> {
    match template.status.to_ascii_uppercase().as_str() {
        "APPROVED" => Ok(()),
        "PAUSED" => Err(Refusal::Paused),
        "DISABLED" => Err(Refusal::Disabled),
        _ => Err(Refusal::NotFound {
            name: template.name.clone(),
            language: template.language.clone(),
        }),
    }
}

/// The distinct `{{placeholder}}` names in `text`, in order of first appearance. A name is
/// letters, digits and `_`; anything else between braces is literal text.
pub(crate) fn placeholders(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            break;
        };
        let name = after[..end].trim();
        if !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    names
}

/// `text` with each `{{name}}` replaced by its value; unknown names stay as they are.
pub(crate) fn fill(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        match values.get(after[..end].trim()) {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn is_positional(names: &[String]) -> bool {
    names.iter().all(|n| n.bytes().all(|b| b.is_ascii_digit()))
}

fn count_mismatch(part: &str, given: usize, expected: usize) -> Refusal {
    Refusal::Count(format!(
        "{part}: number of localizable_params ({given}) does not match the expected number of params ({expected})"
    ))
}

fn kind_of(value: &Value) -> String {
    value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("UNKNOWN")
        .to_ascii_uppercase()
}

fn format_mismatch(part: &str, expected: &str, parameter: &Value) -> Refusal {
    Refusal::Format(format!(
        "{part}: Format mismatch, expected {expected}, received {}",
        kind_of(parameter)
    ))
}

fn non_empty_str<'a>(object: Option<&'a Value>, field: &str) -> Option<&'a str> {
    object?
        .get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The value a text-like parameter shows: `text`, or the `fallback_value` of a currency or
/// date_time (validated as Meta requires).
fn text_value(part: &str, index: usize, parameter: &Value) -> Result<String, Refusal> {
    let n = index + 1;
    let kind = parameter.get("type").and_then(Value::as_str).unwrap_or("");
    match kind.to_ascii_lowercase().as_str() {
        "text" => non_empty_str(Some(parameter), "text")
            .map(str::to_owned)
            .ok_or_else(|| {
                Refusal::Format(format!(
                    "{part}: parameter {n} of type text needs a non-empty text"
                ))
            }),
        "currency" => {
            let currency = parameter.get("currency");
            let amount_ok = currency
                .and_then(|c| c.get("amount_1000"))
                .is_some_and(|a| a.is_i64() || a.is_u64());
            match (
                non_empty_str(currency, "code"),
                non_empty_str(currency, "fallback_value"),
            ) {
                (Some(_), Some(fallback)) if amount_ok => Ok(fallback.to_owned()),
                _ => Err(Refusal::Format(format!(
                    "{part}: parameter {n} of type currency needs code, amount_1000 and fallback_value"
                ))),
            }
        }
        "date_time" => non_empty_str(parameter.get("date_time"), "fallback_value")
            .map(str::to_owned)
            .ok_or_else(|| {
                Refusal::Format(format!(
                    "{part}: parameter {n} of type date_time needs a fallback_value"
                ))
            }),
        _ => Err(format_mismatch(part, "TEXT", parameter)),
    }
}

/// Checks `parameters` against the placeholders `names` of one text part (header or body) and
/// answers each placeholder's value.
fn text_part(
    part: &str,
    names: &[String],
    parameters: &[Value],
) -> Result<BTreeMap<String, String>, Refusal> {
    if parameters.len() != names.len() {
        return Err(count_mismatch(part, parameters.len(), names.len()));
    }
    let mut values = BTreeMap::new();
    let positional = is_positional(names);
    for (index, parameter) in parameters.iter().enumerate() {
        let value = text_value(part, index, parameter)?;
        let name = if positional {
            (index + 1).to_string()
        } else {
            let Some(name) = parameter.get("parameter_name").and_then(Value::as_str) else {
                return Err(Refusal::Count(format!(
                    "{part}: parameter {} has no parameter_name; the template's parameters are named ({})",
                    index + 1,
                    names.join(", ")
                )));
            };
            if !names.iter().any(|n| n == name) {
                return Err(Refusal::Count(format!(
                    "{part}: parameter_name {name} is not a parameter of the template ({})",
                    names.join(", ")
                )));
            }
            if values.contains_key(name) {
                return Err(Refusal::Count(format!(
                    "{part}: parameter_name {name} is given twice"
                )));
            }
            name.to_owned()
        };
        values.insert(name, value);
    }
    Ok(values)
}

/// One button component of the send, by index.
struct ButtonSend<'a> {
    sub_type: String,
    parameters: &'a [Value],
}

/// The send's components, sorted by part.
#[derive(Default)]
struct SendParts<'a> {
    header: Option<&'a [Value]>,
    body: Option<&'a [Value]>,
    buttons: BTreeMap<u64, ButtonSend<'a>>,
}

fn parameters_of(component: &Map<String, Value>) -> Result<&[Value], Refusal> {
    match component.get("parameters") {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(parameters)) => Ok(parameters),
        Some(_) => Err(Refusal::Invalid(
            "components[].parameters must be an array".to_owned(),
        )),
    }
}

fn button_index(component: &Map<String, Value>) -> Option<u64> {
    match component.get("index")? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.len() <= 3 => s.parse().ok(),
        _ => None,
    }
}

fn send_parts(template: &Map<String, Value>) -> Result<SendParts<'_>, Refusal> {
    let mut parts = SendParts::default();
    let components = match template.get("components") {
        None | Some(Value::Null) => return Ok(parts),
        Some(Value::Array(components)) => components,
        Some(_) => {
            return Err(Refusal::Invalid(
                "template['components'] must be an array".to_owned(),
            ));
        }
    };
    for component in components {
        let Value::Object(component) = component else {
            return Err(Refusal::Invalid(
                "each of template['components'] must be an object".to_owned(),
            ));
        };
        let kind = component
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let parameters = parameters_of(component)?;
        let duplicate = match kind.as_str() {
            "header" => parts.header.replace(parameters).is_some(),
            "body" => parts.body.replace(parameters).is_some(),
            "button" => {
                let Some(index) = button_index(component) else {
                    return Err(Refusal::Invalid(
                        "a button component needs an index from 0 to 9".to_owned(),
                    ));
                };
                let sub_type = component
                    .get("sub_type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_ascii_uppercase();
                parts
                    .buttons
                    .insert(
                        index,
                        ButtonSend {
                            sub_type,
                            parameters,
                        },
                    )
                    .is_some()
            }
            other => {
                return Err(Refusal::Invalid(format!(
                    "component type {other:?} is not one of header, body, button"
                )));
            }
        };
        if duplicate {
            return Err(Refusal::Invalid(format!(
                "template['components'] has more than one {kind} component for the same part"
            )));
        }
    }
    Ok(parts)
}

/// The template's definition component of `kind` (`HEADER`, `BODY`, `BUTTONS`).
fn definition<'a>(template: &'a MetaTemplate, kind: &str) -> Option<&'a Value> {
    template.components.iter().find(|c| {
        c.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case(kind))
    })
}

fn upper(value: Option<&Value>, field: &str) -> String {
    value
        .and_then(|v| v.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_uppercase()
}

fn check_header(template: &MetaTemplate, given: &[Value]) -> Result<(), Refusal> {
    let header = definition(template, "HEADER");
    let format = upper(header, "format");
    match format.as_str() {
        "IMAGE" | "DOCUMENT" | "VIDEO" => {
            if given.len() != 1 {
                return Err(count_mismatch("header", given.len(), 1));
            }
            let parameter = &given[0];
            let kind = format.to_ascii_lowercase();
            if !parameter
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case(&kind))
            {
                return Err(format_mismatch("header", &format, parameter));
            }
            let media = parameter.get(&kind);
            let link_ok = non_empty_str(media, "link").is_some_and(|link| {
                url::Url::parse(link).is_ok_and(|u| u.scheme() == "https" && u.host().is_some())
            });
            if link_ok || non_empty_str(media, "id").is_some() {
                Ok(())
            } else {
                Err(Refusal::Format(format!(
                    "header: the {kind} parameter needs an https link or a media id"
                )))
            }
        }
        "LOCATION" => {
            if given.len() != 1 {
                return Err(count_mismatch("header", given.len(), 1));
            }
            let location = given[0].get("location");
            let coordinate = |field| {
                location
                    .and_then(|l| l.get(field))
                    .is_some_and(|v| v.is_number() || v.is_string())
            };
            if kind_of(&given[0]) == "LOCATION" && coordinate("latitude") && coordinate("longitude")
            {
                Ok(())
            } else {
                Err(format_mismatch("header", "LOCATION", &given[0]))
            }
        }
        // TEXT, or no header at all: as many parameters as placeholders (none without header).
        _ => {
            let text = header
                .and_then(|h| h.get("text"))
                .and_then(Value::as_str)
                .unwrap_or("");
            text_part("header", &placeholders(text), given).map(|_| ())
        }
    }
}

fn check_buttons(
    template: &MetaTemplate,
    given: &BTreeMap<u64, ButtonSend<'_>>,
) -> Result<(), Refusal> {
    let defined: &[Value] = definition(template, "BUTTONS")
        .and_then(|b| b.get("buttons"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    if let Some((index, _)) = given
        .iter()
        .find(|(index, _)| usize::try_from(**index).map_or(true, |i| i >= defined.len()))
    {
        return Err(Refusal::Count(format!(
            "buttons: the template has no button at index {index} ({} buttons)",
            defined.len()
        )));
    }
    for (index, button) in defined.iter().enumerate() {
        let kind = upper(Some(button), "type");
        let sent = u64::try_from(index).ok().and_then(|i| given.get(&i));
        let expected_sub_type = kind.replace(' ', "_");
        if let Some(sent) = sent
            && sent.sub_type != expected_sub_type
        {
            return Err(Refusal::Format(format!(
                "buttons: Format mismatch at index {index}, expected {expected_sub_type}, received {}",
                if sent.sub_type.is_empty() {
                    "UNKNOWN"
                } else {
                    &sent.sub_type
                }
            )));
        }
        let parameters = sent.map_or(&[][..], |s| s.parameters);
        match kind.as_str() {
            "URL" => {
                let url = button.get("url").and_then(Value::as_str).unwrap_or("");
                let expected = placeholders(url).len().min(1);
                if parameters.len() != expected {
                    return Err(count_mismatch("buttons", parameters.len(), expected));
                }
                if let Some(parameter) = parameters.first()
                    && non_empty_str(Some(parameter), "text").is_none()
                {
                    return Err(if kind_of(parameter) == "TEXT" {
                        Refusal::Format(format!(
                            "buttons: the url button at index {index} needs a non-empty text"
                        ))
                    } else {
                        format_mismatch("buttons", "TEXT", parameter)
                    });
                }
            }
            "QUICK_REPLY" => {
                if parameters.len() > 1 {
                    return Err(count_mismatch("buttons", parameters.len(), 1));
                }
                if let Some(parameter) = parameters.first()
                    && (kind_of(parameter) != "PAYLOAD"
                        || non_empty_str(Some(parameter), "payload").is_none())
                {
                    return Err(format_mismatch("buttons", "PAYLOAD", parameter));
                }
            }
            "COPY_CODE" => {
                if parameters.len() != 1 {
                    return Err(count_mismatch("buttons", parameters.len(), 1));
                }
                let parameter = &parameters[0];
                if kind_of(parameter) != "COUPON_CODE"
                    || non_empty_str(Some(parameter), "coupon_code").is_none()
                {
                    return Err(format_mismatch("buttons", "COUPON_CODE", parameter));
                }
            }
            // Phone number and other static buttons take no parameters.
            _ => {
                if !parameters.is_empty() {
                    return Err(count_mismatch("buttons", parameters.len(), 0));
                }
            }
        }
    }
    Ok(())
}

/// Checks the send's `template` object against `definition`; answers the body text with the
/// parameters filled in (`None` if the template has no body).
pub(crate) fn check(
    definition_template: &MetaTemplate,
    send: &Map<String, Value>,
) -> Result<Option<String>, Refusal> {
    sendable(definition_template)?;
    let parts = send_parts(send)?;
    check_header(definition_template, parts.header.unwrap_or(&[]))?;
    let body_text = definition(definition_template, "BODY")
        .and_then(|b| b.get("text"))
        .and_then(Value::as_str);
    let names = body_text.map(placeholders).unwrap_or_default();
    let values = text_part("body", &names, parts.body.unwrap_or(&[]))?;
    check_buttons(definition_template, &parts.buttons)?;
    Ok(body_text.map(|text| fill(text, &values)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rsvp() -> MetaTemplate {
        MetaTemplate::new(
            "waba",
            "rsvp_reminder",
            "en_US",
            vec![
                json!({"type": "HEADER", "format": "IMAGE"}),
                json!({"type": "BODY", "text": "Hi {{1}}, {{2}} starts at {{3}}. Price {{2}}."}),
                json!({"type": "BUTTONS", "buttons": [
                    {"type": "URL", "text": "RSVP", "url": "https://rsvp.example/{{1}}"},
                    {"type": "QUICK_REPLY", "text": "No"},
                ]}),
            ],
        )
    }

    fn send(components: Value) -> Map<String, Value> {
        match json!({"name": "rsvp_reminder", "language": {"code": "en_US"}, "components": components})
        {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn good() -> Value {
        json!([
            {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://cdn.example/b.jpg"}}]},
            {"type": "body", "parameters": [
                {"type": "text", "text": "Ada"},
                {"type": "currency", "currency": {"fallback_value": "1,250.50 ZMW", "code": "ZMW", "amount_1000": 1_250_500}},
                {"type": "date_time", "date_time": {"fallback_value": "12 Dec 2026, 20:30"}},
            ]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "tok"}]},
        ])
    }

    #[test]
    fn placeholders_are_distinct_and_ordered() {
        assert_eq!(
            placeholders("{{2}} {{1}} {{2}} {{ x }} {{a b}} {{"),
            ["2", "1", "x"]
        );
        assert!(placeholders("no braces }} {{").is_empty());
    }

    #[test]
    fn fill_replaces_known_names_only() {
        let values: BTreeMap<String, String> =
            [("1".to_owned(), "Ada".to_owned())].into_iter().collect();
        assert_eq!(fill("Hi {{1}}, {{2}} {{", &values), "Hi Ada, {{2}} {{");
        assert_eq!(fill("é{{1}}ü", &values), "éAdaü");
    }

    #[test]
    fn a_matching_send_fills_the_body() {
        assert_eq!(
            check(&rsvp(), &send(good())),
            Ok(Some(
                "Hi Ada, 1,250.50 ZMW starts at 12 Dec 2026, 20:30. Price 1,250.50 ZMW.".to_owned()
            ))
        );
    }

    #[test]
    fn mismatches_answer_metas_codes() {
        let mut two = good();
        if let Some(parameters) = two[1]["parameters"].as_array_mut() {
            parameters.truncate(2);
        }
        assert_eq!(
            check(&rsvp(), &send(two)),
            Err(Refusal::Count(
                "body: number of localizable_params (2) does not match the expected number of params (3)"
                    .to_owned()
            ))
        );
        let mut bad_currency = good();
        bad_currency[1]["parameters"][1]["currency"] = json!({"fallback_value": "x"});
        assert!(matches!(
            check(&rsvp(), &send(bad_currency)),
            Err(Refusal::Format(_))
        ));
        let mut http_image = good();
        http_image[0]["parameters"][0]["image"]["link"] = json!("http://cdn.example/b.jpg");
        assert!(matches!(
            check(&rsvp(), &send(http_image)),
            Err(Refusal::Format(_))
        ));
        let mut text_header = good();
        text_header[0]["parameters"][0] = json!({"type": "text", "text": "x"});
        assert_eq!(
            check(&rsvp(), &send(text_header)),
            Err(Refusal::Format(
                "header: Format mismatch, expected IMAGE, received TEXT".to_owned()
            ))
        );
        let mut no_button = good();
        if let Some(components) = no_button.as_array_mut() {
            components.truncate(2);
        }
        assert!(matches!(
            check(&rsvp(), &send(no_button)),
            Err(Refusal::Count(_))
        ));
        assert_eq!(
            check(&rsvp().with_status("PAUSED"), &send(good())),
            Err(Refusal::Paused)
        );
        assert_eq!(
            check(&rsvp().with_status("disabled"), &send(good())),
            Err(Refusal::Disabled)
        );
        assert!(matches!(
            check(&rsvp().with_status("IN_APPEAL"), &send(good())),
            Err(Refusal::NotFound { .. })
        ));
        assert!(matches!(
            check(&rsvp(), &send(json!("nope"))),
            Err(Refusal::Invalid(_))
        ));
    }

    #[test]
    fn named_parameters_match_by_name() {
        let template = MetaTemplate::new(
            "waba",
            "welcome",
            "fr",
            vec![json!({"type": "BODY", "text": "Bonjour {{guest_name}}, à {{place}}"})],
        );
        let body = |params: Value| send(json!([{"type": "body", "parameters": params}]));
        assert_eq!(
            check(
                &template,
                &body(json!([
                    {"type": "text", "parameter_name": "place", "text": "Lusaka"},
                    {"type": "text", "parameter_name": "guest_name", "text": "Ada"},
                ]))
            ),
            Ok(Some("Bonjour Ada, à Lusaka".to_owned()))
        );
        assert!(matches!(
            check(
                &template,
                &body(json!([
                    {"type": "text", "parameter_name": "plase", "text": "Lusaka"},
                    {"type": "text", "parameter_name": "guest_name", "text": "Ada"},
                ]))
            ),
            Err(Refusal::Count(_))
        ));
        assert!(matches!(
            check(
                &template,
                &body(json!([{"type": "text", "text": "Ada"}, {"type": "text", "text": "x"}]))
            ),
            Err(Refusal::Count(_))
        ));
    }
}
