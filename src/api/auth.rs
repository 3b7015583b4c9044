//! Security schemes of the spec: OAuth 2.0 (so Swagger UI's Authorize
//! button logs a user in: the code flow with PKCE, or the password flow)
//! and plain bearer. Either carries the access token, and both check it
//! the same way ([`check`]): a handler that takes [`AccessToken`] gets the
//! verified claims or never runs.

use poem::{IntoResponse as _, Request};
use poem_openapi::auth::Bearer;
use poem_openapi::{OAuthScopes, SecurityScheme};

use super::error::ApiError;
use crate::app::AppState;
use crate::oauth::Caller;

/// Verifies the bearer token (signature, `kid`, `typ`, issuer, time, deny
/// list) and reads the caller's account with the deny list, in one query; a
/// refusal is answered in the contract's shape with `WWW-Authenticate`
/// (RFC 6750 §3).
async fn check(req: &Request, bearer: Bearer) -> poem::Result<Caller> {
    let state = req
        .data::<AppState>()
        .ok_or_else(|| poem::Error::from_status(poem::http::StatusCode::INTERNAL_SERVER_ERROR))?;
    state
        .oauth
        .caller(&bearer.token)
        .await
        .map_err(|e| poem::Error::from_response(ApiError::from(e).into_response()))
}

/// Scopes Gatehouse grants.
#[derive(OAuthScopes)]
pub enum GatehouseScopes {
    /// OpenID Connect: issue an ID token.
    #[oai(rename = "openid")]
    Openid,
    /// Name, username, profile update time.
    #[oai(rename = "profile")]
    Profile,
    /// Email and whether it is verified.
    #[oai(rename = "email")]
    Email,
    /// Phone number.
    #[oai(rename = "phone")]
    Phone,
    /// Refresh tokens.
    #[oai(rename = "offline_access")]
    OfflineAccess,
}

/// Log in: the authorization code flow with PKCE through the hosted login
/// page (client `docs`), or the password flow for clients that allow it.
#[derive(SecurityScheme)]
#[oai(
    rename = "oauth2",
    ty = "oauth2",
    flows(
        authorization_code(
            authorization_url = "/oauth/authorize",
            token_url = "/oauth/token",
            scopes = "GatehouseScopes"
        ),
        password(token_url = "/oauth/token", scopes = "GatehouseScopes")
    ),
    checker = "check"
)]
pub struct PasswordFlow(pub Caller);

/// Paste an access token.
#[derive(SecurityScheme)]
#[oai(
    rename = "bearer",
    ty = "bearer",
    bearer_format = "JWT",
    checker = "check"
)]
pub struct BearerToken(pub Caller);

/// An access token from either scheme.
#[derive(SecurityScheme)]
pub enum AccessToken {
    /// From an OAuth 2.0 flow.
    Password(PasswordFlow),
    /// Given directly.
    Bearer(BearerToken),
}

impl AccessToken {
    /// The verified caller: claims and account.
    pub fn caller(self) -> Caller {
        match self {
            AccessToken::Password(p) => p.0,
            AccessToken::Bearer(b) => b.0,
        }
    }
}
