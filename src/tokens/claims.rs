//! JWT claim sets: access tokens (RFC 9068) and ID tokens (OIDC Core §2).

use serde::{Deserialize, Serialize};

/// Claims of an access token (RFC 9068 §2.2, plus the profile claims
/// relying parties read most).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    /// Issuer: `server.public_url`.
    pub iss: String,
    /// The user's id.
    pub sub: String,
    /// The client's audience.
    pub aud: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Unique id, the deny-list key.
    pub jti: String,
    /// Granted scope.
    pub scope: String,
    /// The user's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the email was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// Username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Roles, e.g. `["admin"]`; absent when the user has none (RFC 9068
    /// §7.2.1 validators, authlib's among them, refuse an empty `roles`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Session id: the refresh-token family this token came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// Claims of an ID token (OIDC Core §2 and §5.1), filtered by scope.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct IdClaims {
    /// Issuer.
    pub iss: String,
    /// The user's id.
    pub sub: String,
    /// The client id.
    pub aud: String,
    /// Expiry.
    pub exp: i64,
    /// Issue time.
    pub iat: i64,
    /// When the user entered a password.
    pub auth_time: i64,
    /// The authorization request's `nonce` (OIDC Core §3.1.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// How the user authenticated (RFC 8176): `["pwd"]`.
    #[serde(default)]
    pub amr: Vec<String>,
    /// The browser login session (OIDC Front-/Back-Channel Logout `sid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Standard claims the scope allows.
    #[serde(flatten)]
    pub profile: ProfileClaims,
}

/// OIDC standard claims (OIDC Core §5.1), each present only when the scope
/// allows it and the user has it. Shared by ID tokens and userinfo.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ProfileClaims {
    /// `email` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `email` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// `profile` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// `profile` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// `profile` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// `profile` scope: given and family name joined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `phone` scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// `profile` scope: last profile change, seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
}

impl ProfileClaims {
    /// The claims of `user` that `scope` allows.
    pub fn of(user: &crate::entity::users::Model, scope: &crate::scope::Scope) -> Self {
        let mut c = ProfileClaims::default();
        if scope.has("email") {
            c.email = Some(user.email.clone());
            c.email_verified = Some(user.email_verified);
        }
        if scope.has("profile") {
            c.preferred_username = user.username.clone();
            c.given_name = user.given_name.clone();
            c.family_name = user.family_name.clone();
            let name: Vec<&str> = [user.given_name.as_deref(), user.family_name.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            c.name = (!name.is_empty()).then(|| name.join(" "));
            c.updated_at = Some(user.updated_at.timestamp());
        }
        if scope.has("phone") {
            c.phone_number = user.phone_number.clone();
        }
        c
    }
}
