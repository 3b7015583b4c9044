//! Response objects shared by several endpoint groups.

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use uuid::Uuid;

use crate::entity::users;
use crate::tokens::TokenSet;

/// An account (never with its password hash).
#[derive(Debug, Clone, Object)]
pub struct User {
    /// Stable id; the `sub` of its tokens.
    pub id: Uuid,
    /// Email as registered.
    pub email: String,
    /// Whether the email was proven (activation).
    pub email_verified: bool,
    /// Optional login name.
    #[oai(nullable)]
    pub username: Option<String>,
    /// Given name.
    #[oai(nullable)]
    pub given_name: Option<String>,
    /// Family name.
    #[oai(nullable)]
    pub family_name: Option<String>,
    /// Phone number, E.164.
    #[oai(nullable)]
    pub phone_number: Option<String>,
    /// Activated and not disabled.
    pub is_active: bool,
    /// Roles, e.g. `["admin"]`.
    pub roles: Vec<String>,
    /// Creation time (RFC 3339).
    pub created_at: DateTime<Utc>,
    /// Last change (RFC 3339).
    pub updated_at: DateTime<Utc>,
}

impl From<users::Model> for User {
    fn from(u: users::Model) -> Self {
        Self {
            roles: u.role_list(),
            is_active: u.activated && !u.disabled,
            id: u.id,
            email: u.email,
            email_verified: u.email_verified,
            username: u.username,
            given_name: u.given_name,
            family_name: u.family_name,
            phone_number: u.phone_number,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Object)]
pub struct TokenResponse {
    /// RS256 JWT access token (RFC 9068).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Opaque refresh token; rotated on every use.
    pub refresh_token: String,
    /// Granted scope, space separated.
    pub scope: String,
    /// OIDC ID token, when `openid` was granted.
    #[oai(skip_serializing_if_is_none)]
    pub id_token: Option<String>,
}

impl From<TokenSet> for TokenResponse {
    fn from(t: TokenSet) -> Self {
        Self {
            access_token: t.access_token,
            token_type: "Bearer".into(),
            expires_in: t.expires_in,
            refresh_token: t.refresh_token,
            scope: t.scope,
            id_token: t.id_token,
        }
    }
}
