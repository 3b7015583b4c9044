//! The JSON response body of every endpoint, named `application/json`
//! in the spec.

use poem::IntoResponse;
use poem_openapi::ApiResponse;
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry};
use poem_openapi::types::{ToJSON, Type};

/// The JSON media type, as the spec names it (requests are matched
/// case-insensitively with parameters ignored: `payload`).
pub const JSON: &str = "application/json";

/// A JSON response body, named `application/json` in the spec (poem-
/// openapi's own names `application/json; charset=utf-8`, a key clients'
/// code generators do not expect; JSON is UTF-8 by definition, RFC 8259 §8.1).
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T> std::ops::Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Type> Payload for Json<T> {
    const CONTENT_TYPE: &'static str = JSON;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ToJSON> IntoResponse for Json<T> {
    fn into_response(self) -> poem::Response {
        let body = self.0.to_json().unwrap_or_default().to_string();
        poem::Response::builder().content_type(JSON).body(body)
    }
}

impl<T: ToJSON> ApiResponse for Json<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: JSON,
                    schema: T::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}
