//! The one mapping from domain errors (and poem's own errors) to the
//! contract's error shape: `{"error", "error_description", "fields"?}`.
//! Internal errors are logged here, once, and shown as `internal_error`.

use std::collections::BTreeMap;

use super::json::Json;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::{ApiResponse, Object};

use crate::error::Error;

/// The error body of every endpoint.
#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    /// Machine-readable code (RFC 6749 §5.2, RFC 6750 §3.1, RFC 7009, or
    /// Gatehouse's: `validation_failed`, `email_taken`, `rate_limited`, ...).
    pub error: String,
    /// A sentence for humans.
    pub error_description: String,
    /// For `validation_failed`: the problems of each field.
    #[oai(skip_serializing_if_is_none)]
    pub fields: Option<BTreeMap<String, Vec<String>>>,
}

impl ErrorBody {
    fn new(error: &str, description: impl Into<String>) -> Json<Self> {
        Json(Self {
            error: error.into(),
            error_description: description.into(),
            fields: None,
        })
    }
}

/// Every error response, documented on every operation.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// Malformed or invalid request.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing, invalid or expired credentials.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// Not allowed (`account_not_activated`), or the token lacks a scope
    /// (`insufficient_scope`, with `WWW-Authenticate`, RFC 6750 §3.1).
    #[oai(status = 403)]
    Forbidden(
        Json<ErrorBody>,
        #[oai(header = "WWW-Authenticate")] Option<String>,
    ),
    /// Conflicts with existing data (`email_taken`).
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// Body larger than `server.max_body_bytes`.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// Content type not accepted.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// Rate limited; retry after the given seconds.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    /// Unexpected failure (details are logged, not shown).
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// A dependency (database, Redis, captcha provider) is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

/// `WWW-Authenticate` for a bearer-protected endpoint (RFC 6750 §3).
pub fn bearer_challenge(description: &str) -> String {
    let d = description.replace(['"', '\\'], "'");
    format!("Bearer realm=\"gatehouse\", error=\"invalid_token\", error_description=\"{d}\"")
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let msg = e.to_string();
        match e {
            Error::Validation(fields) => ApiError::BadRequest(Json(ErrorBody {
                error: "validation_failed".into(),
                error_description: "some fields are invalid; see `fields`".into(),
                fields: Some(fields),
            })),
            Error::InvalidRequest(_) => {
                ApiError::BadRequest(ErrorBody::new("invalid_request", msg))
            }
            Error::InvalidClient => ApiError::Unauthorized(
                ErrorBody::new("invalid_client", msg),
                "Basic realm=\"gatehouse\"".into(),
            ),
            Error::InvalidGrant(_) => ApiError::BadRequest(ErrorBody::new("invalid_grant", msg)),
            Error::UnauthorizedClient => {
                ApiError::BadRequest(ErrorBody::new("unauthorized_client", msg))
            }
            Error::UnsupportedGrantType => ApiError::BadRequest(ErrorBody::new(
                "unsupported_grant_type",
                format!(
                    "grant_type must be one of: {}",
                    crate::grants::ALL.join(", ")
                ),
            )),
            Error::InvalidScope(_) => ApiError::BadRequest(ErrorBody::new("invalid_scope", msg)),
            Error::InvalidBearer(_) => {
                let challenge = bearer_challenge(&msg);
                ApiError::Unauthorized(ErrorBody::new("invalid_token", msg), challenge)
            }
            Error::UnsupportedTokenType => {
                ApiError::BadRequest(ErrorBody::new("unsupported_token_type", msg))
            }
            Error::InvalidResetToken => ApiError::BadRequest(ErrorBody::new("invalid_token", msg)),
            Error::InvalidCode => ApiError::BadRequest(ErrorBody::new("invalid_code", msg)),
            Error::EmailTaken => ApiError::Conflict(ErrorBody::new("email_taken", msg)),
            Error::NotActivated => {
                ApiError::Forbidden(ErrorBody::new("account_not_activated", msg), None)
            }
            Error::InsufficientScope(ref scope) => {
                let challenge = format!(
                    "Bearer realm=\"gatehouse\", error=\"insufficient_scope\", scope=\"{scope}\""
                );
                ApiError::Forbidden(
                    ErrorBody::new(
                        "insufficient_scope",
                        format!("the access token needs the `{scope}` scope"),
                    ),
                    Some(challenge),
                )
            }
            Error::RateLimited { retry_after } => {
                let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                ApiError::TooManyRequests(
                    ErrorBody::new(
                        "rate_limited",
                        format!("too many requests; try again in {secs} seconds"),
                    ),
                    secs,
                )
            }
            Error::Unavailable(_) => {
                tracing::warn!(error = %msg, "answering 503");
                ApiError::Unavailable(ErrorBody::new("service_unavailable", msg))
            }
            Error::Internal(source) => {
                tracing::error!(error = %source, cause = ?source, "internal error");
                ApiError::Internal(ErrorBody::new(
                    "internal_error",
                    "an internal error occurred",
                ))
            }
        }
    }
}

/// Maps what poem answers by itself (parse errors, 404, 405, 413, 415,
/// missing credentials, caught panics) to the contract's shape.
pub fn from_poem(err: poem::Error) -> Response {
    let status = err.status();
    let (code, description): (&str, String) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such resource".into()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this method is not allowed here".into(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ("payload_too_large", "the request body is too large".into())
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "use application/json or application/x-www-form-urlencoded".into(),
        ),
        StatusCode::UNAUTHORIZED => (
            "invalid_token",
            "a valid bearer access token is required".into(),
        ),
        s if s.is_client_error() => ("invalid_request", sanitize(&err.to_string())),
        s => {
            tracing::error!(status = %s, error = %err, "internal error");
            ("internal_error", "an internal error occurred".into())
        }
    };
    let status = if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        status
    };
    let body = ErrorBody::new(code, description);
    let mut resp = (status, body).into_response();
    if status == StatusCode::UNAUTHORIZED
        && let Ok(v) = bearer_challenge("a valid bearer access token is required").parse()
    {
        resp.headers_mut().insert("WWW-Authenticate", v);
    }
    resp
}

/// 415, naming what this endpoint accepts.
pub fn unsupported_media_type(accepts: Vec<String>) -> Response {
    let description = if accepts.is_empty() {
        "this endpoint takes no request body".to_owned()
    } else {
        format!(
            "this endpoint accepts Content-Type {}",
            accepts
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )
    };
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorBody::new("unsupported_media_type", description),
    )
        .into_response()
}

/// Parse-error messages echo input; keep them short and printable.
fn sanitize(s: &str) -> String {
    let cleaned: String = s.chars().filter(|c| !c.is_control()).take(300).collect();
    if cleaned.is_empty() {
        "the request is malformed".into()
    } else {
        cleaned
    }
}
