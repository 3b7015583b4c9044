//! The domain's one error type: product failures in the contract's words,
//! no status codes. `api::error` alone maps these to HTTP.

use std::collections::BTreeMap;
use std::time::Duration;

/// Field name → problems, for `validation_failed`.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Everything a use case can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input failed validation; `fields` says where.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// RFC 6749 §5.2 `invalid_request`: missing or malformed parameter.
    #[error("{0}")]
    InvalidRequest(String),
    /// RFC 6749 §5.2 `invalid_client`: unknown client or bad secret.
    #[error("client authentication failed")]
    InvalidClient,
    /// RFC 6749 §5.2 `invalid_grant`: bad credentials or refresh token.
    #[error("{0}")]
    InvalidGrant(String),
    /// RFC 6749 §5.2 `unauthorized_client`: grant not allowed for client.
    #[error("this client may not use this grant type")]
    UnauthorizedClient,
    /// RFC 6749 §5.2 `unsupported_grant_type`.
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    /// RFC 6749 §5.2 `invalid_scope`.
    #[error("{0}")]
    InvalidScope(String),
    /// RFC 6750 §3.1 `invalid_token`: a bearer token that does not verify.
    #[error("{0}")]
    InvalidBearer(String),
    /// RFC 6750 §3.1 `insufficient_scope`: the token lacks a needed scope.
    #[error("{0}")]
    InsufficientScope(String),
    /// RFC 7009 §2.2.1 `unsupported_token_type`.
    #[error("unsupported token type")]
    UnsupportedTokenType,
    /// A password-reset token that is wrong, expired or spent.
    #[error("the reset token is invalid, expired or already used")]
    InvalidResetToken,
    /// An activation code that is wrong or expired.
    #[error("the code is wrong or expired")]
    InvalidCode,
    /// Registration with an email that has an account.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// The account must be activated first.
    #[error("the account is not activated")]
    NotActivated,
    /// Too many requests; try again after `retry_after`.
    #[error("too many requests")]
    RateLimited {
        /// When the caller may try again.
        retry_after: Duration,
    },
    /// A dependency (database, Redis, captcha provider) does not answer.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; the source is logged, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// A one-field validation error.
    pub fn field(name: &str, problem: impl Into<String>) -> Self {
        let mut fields = FieldErrors::new();
        fields.insert(name.to_owned(), vec![problem.into()]);
        Error::Validation(fields)
    }

    /// Wraps any unexpected failure.
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Internal(e.into())
    }
}

impl From<crate::scope::UnknownScope> for Error {
    fn from(e: crate::scope::UnknownScope) -> Self {
        Error::InvalidScope(e.to_string())
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(e: sea_orm::DbErr) -> Self {
        if crate::db::is_unavailable(&e) {
            Error::Unavailable("the database is unavailable".into())
        } else {
            Error::Internal(Box::new(e))
        }
    }
}

impl From<sea_orm::TransactionError<Error>> for Error {
    fn from(e: sea_orm::TransactionError<Error>) -> Self {
        match e {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(e) => e,
        }
    }
}

/// Shorthand for domain results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
