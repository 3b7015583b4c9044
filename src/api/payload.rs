//! Request bodies, read strictly: JSON fields of the wrong type, unknown
//! fields (where a body says it has none), and control characters in any
//! text are refused as 400 `validation_failed` naming the field, before a
//! handler or the database sees them.
//!
//! poem-openapi's own `Json<T>` turns `12` into `"12"` for a string field
//! and does not say which field failed, so bodies are parsed with serde
//! (through `serde_path_to_error`, for the field's name) while the schema in
//! the spec still comes from the type's `Object` derive.

use poem::{FromRequest, IntoResponse, Request, RequestBody};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::error::{Error, FieldErrors};

pub use super::json::JSON;

/// Form-encoded bodies (RFC 6749 §4.3.2 and friends).
pub const FORM: &str = "application/x-www-form-urlencoded";

/// Rewrites a `Content-Type` of JSON or form-encoded, in any case and with
/// any parameters (`;charset=UTF-8`, sent by authlib, openid-client and
/// browsers), to its bare media type, so that matching is as HTTP means it
/// (RFC 9110 §8.3.1). Other types are left for the endpoint to refuse.
pub fn normalize_content_type(value: &str) -> Option<&'static str> {
    let essence = value.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case(JSON) {
        Some(JSON)
    } else if essence.eq_ignore_ascii_case(FORM) {
        Some(FORM)
    } else {
        None
    }
}

/// A JSON body parsed with serde into `T`, documented with `T`'s schema.
#[derive(Debug)]
pub struct StrictJson<T>(pub T);

impl<T> std::ops::Deref for StrictJson<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// A form-encoded body parsed with serde into `T`.
#[derive(Debug)]
pub struct StrictForm<T>(pub T);

fn refuse(fields: FieldErrors) -> poem::Error {
    poem::Error::from_response(ApiError::from(Error::Validation(fields)).into_response())
}

/// A body that is not a document of its type at all: `invalid_request`.
fn malformed(description: &str) -> poem::Error {
    poem::Error::from_response(
        ApiError::from(Error::InvalidRequest(description.to_owned())).into_response(),
    )
}

fn one(field: &str, problem: &str) -> poem::Error {
    let mut f = FieldErrors::new();
    f.insert(field.to_owned(), vec![problem.to_owned()]);
    refuse(f)
}

const CONTROL: &str = "must not contain control characters";

/// Most problems one answer lists, and the longest field name it echoes:
/// an answer must stay small whatever the body (a 64 KiB body once made a
/// 200 MB answer, one long key repeated per array item).
const MAX_PROBLEMS: usize = 8;
const MAX_NAME: usize = 64;

/// A field name fit to echo: at most [`MAX_NAME`] characters.
fn echo(name: &str) -> String {
    if name.chars().count() <= MAX_NAME {
        name.to_owned()
    } else {
        let mut short: String = name.chars().take(MAX_NAME).collect();
        short.push('…');
        short
    }
}

/// Control characters (NUL included) anywhere in a JSON document's strings,
/// keys included, by the path of the field that holds them (at most
/// [`MAX_PROBLEMS`]; paths are built only for what is reported).
fn control_characters(value: &serde_json::Value, path: &mut Vec<String>, found: &mut FieldErrors) {
    if found.len() >= MAX_PROBLEMS {
        return;
    }
    match value {
        serde_json::Value::String(s) if s.chars().any(char::is_control) => {
            let name = if path.is_empty() {
                "body".to_owned()
            } else {
                let mut joined = String::new();
                for seg in path.iter() {
                    if !joined.is_empty() && !seg.starts_with('[') {
                        joined.push('.');
                    }
                    joined.push_str(seg);
                }
                echo(&joined)
            };
            found.entry(name).or_default().push(CONTROL.into());
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                if found.len() >= MAX_PROBLEMS {
                    return;
                }
                path.push(format!("[{i}]"));
                control_characters(v, path, found);
                path.pop();
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if found.len() >= MAX_PROBLEMS {
                    return;
                }
                if k.chars().any(char::is_control) {
                    found.entry("body".into()).or_default().push(CONTROL.into());
                    continue;
                }
                path.push(k.clone());
                control_characters(v, path, found);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The field a serde error is about: its path, or the name an "unknown
/// field" / "missing field" message quotes.
fn field_of(path: &serde_path_to_error::Path, message: &str) -> String {
    for marker in ["unknown field `", "missing field `"] {
        if let Some(rest) = message.split(marker).nth(1)
            && let Some(name) = rest.split('`').next()
        {
            // serde_path_to_error already ends an unknown field's path with
            // its name; a missing field's path is its parent's.
            let at = path.to_string();
            return echo(&if at == "." || at.is_empty() {
                name.to_owned()
            } else if at == name || at.ends_with(&format!(".{name}")) {
                at
            } else {
                format!("{at}.{name}")
            });
        }
    }
    let p = path.to_string();
    if p == "." || p.is_empty() {
        "body".into()
    } else {
        echo(&p)
    }
}

/// serde's message without the position suffix, which means nothing to a
/// caller and may echo input.
fn problem(message: &str) -> String {
    let m = message.split(" at line ").next().unwrap_or(message);
    if let Some(rest) = m.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or_default();
        return format!("unknown field `{}`: this body does not take it", echo(name));
    }
    if m.starts_with("missing field") {
        return "is required".into();
    }
    m.replace("invalid type: ", "wrong type: ")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

impl<T: Type> Payload for StrictJson<T> {
    const CONTENT_TYPE: &'static str = JSON;

    fn check_content_type(content_type: &str) -> bool {
        normalize_content_type(content_type) == Some(JSON)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + DeserializeOwned> ParsePayload for StrictJson<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        let value: serde_json::Value = serde_json::from_slice(&data)
            .map_err(|_| malformed("the body is not a JSON document"))?;
        if !value.is_object() {
            return Err(malformed("the body must be a JSON object"));
        }
        let mut found = FieldErrors::new();
        control_characters(&value, &mut Vec::new(), &mut found);
        if !found.is_empty() {
            return Err(refuse(found));
        }
        serde_path_to_error::deserialize(value)
            .map(Self)
            .map_err(|e| {
                let message = e.inner().to_string();
                one(&field_of(e.path(), &message), &problem(&message))
            })
    }
}

poem_openapi::impl_apirequest_for_payload!(StrictJson<T>, T: Type + DeserializeOwned);

/// The pairs of a form body, or `None` when a name or value is not UTF-8
/// once percent-decoded (the usual decoders replace such bytes silently).
fn decode_form(data: &[u8]) -> Option<Vec<(String, String)>> {
    let decode = |part: &[u8]| -> Option<String> {
        let spaced: Vec<u8> = part
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
        String::from_utf8(bytes).ok()
    };
    data.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut kv = pair.splitn(2, |&b| b == b'=');
            let k = decode(kv.next().unwrap_or_default())?;
            let v = decode(kv.next().unwrap_or_default())?;
            Some((k, v))
        })
        .collect()
}

impl<T: Type> Payload for StrictForm<T> {
    const CONTENT_TYPE: &'static str = FORM;

    fn check_content_type(content_type: &str) -> bool {
        normalize_content_type(content_type) == Some(FORM)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + DeserializeOwned> ParsePayload for StrictForm<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        let pairs =
            decode_form(&data).ok_or_else(|| malformed("the body is not form-encoded UTF-8"))?;
        let mut found = FieldErrors::new();
        for (k, v) in &pairs {
            if found.len() >= MAX_PROBLEMS {
                break;
            }
            if k.chars().any(char::is_control) {
                found.entry("body".into()).or_default().push(CONTROL.into());
            } else if v.chars().any(char::is_control) {
                found.entry(echo(k)).or_default().push(CONTROL.into());
            }
        }
        if !found.is_empty() {
            return Err(refuse(found));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(&data));
        serde_path_to_error::deserialize(de).map(Self).map_err(|e| {
            let message = e.inner().to_string();
            // RFC 6749 §3.2: parameters "MUST NOT be included more than once".
            if let Some(rest) = message.strip_prefix("duplicate field `") {
                let name = rest.split('`').next().unwrap_or_default();
                return malformed(&format!("parameter `{name}` is given more than once"));
            }
            one(&field_of(e.path(), &message), &problem(&message))
        })
    }
}

poem_openapi::impl_apirequest_for_payload!(StrictForm<T>, T: Type + DeserializeOwned);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_match_as_http_means_them() {
        for (given, want) in [
            ("application/x-www-form-urlencoded", Some(FORM)),
            (
                "application/x-www-form-urlencoded;charset=UTF-8",
                Some(FORM),
            ),
            (
                "Application/X-WWW-Form-URLEncoded; charset=utf-8",
                Some(FORM),
            ),
            ("application/json", Some(JSON)),
            ("application/json; charset=utf-8", Some(JSON)),
            ("APPLICATION/JSON", Some(JSON)),
            ("text/plain", None),
            ("application/jsonx", None),
            ("multipart/form-data; boundary=x", None),
        ] {
            assert_eq!(normalize_content_type(given), want, "{given}");
        }
    }

    #[test]
    fn control_characters_are_found_by_field() {
        let v = serde_json::json!({"a": "ok", "b": "x\u{0}y", "c": {"d": ["\u{7}"]}});
        let mut found = FieldErrors::new();
        control_characters(&v, &mut Vec::new(), &mut found);
        assert_eq!(
            found.keys().cloned().collect::<Vec<_>>(),
            vec!["b".to_owned(), "c.d[0]".to_owned()]
        );
    }

    #[test]
    fn an_answer_stays_small_whatever_the_body() {
        let key = "k".repeat(32_000);
        let items: Vec<serde_json::Value> = (0..6_000).map(|_| "\t".into()).collect();
        let v = serde_json::json!({ key: items });
        let mut found = FieldErrors::new();
        control_characters(&v, &mut Vec::new(), &mut found);
        assert!(found.len() <= MAX_PROBLEMS);
        let size: usize = found.keys().map(String::len).sum();
        assert!(size < 1_000, "{size} bytes of names echoed");
    }

    #[test]
    fn form_bodies_must_be_utf8_once_decoded() {
        assert_eq!(
            decode_form(b"a=b+c&d=%C3%A9&e"),
            Some(vec![
                ("a".into(), "b c".into()),
                ("d".into(), "\u{e9}".into()),
                ("e".into(), String::new())
            ])
        );
        assert_eq!(decode_form(b"a=%FF"), None);
    }
}
