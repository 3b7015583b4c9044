//! Security schemes of the spec: an OAuth2 password flow (so Swagger UI's
//! Authorize button logs a user in through `/oauth/token`) and plain bearer.
//! Either carries the access token; checking it is `Tokens::verify_access`.

use poem_openapi::auth::Bearer;
use poem_openapi::{OAuthScopes, SecurityScheme};

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

/// Log in with email (or username) and password.
#[derive(SecurityScheme)]
#[oai(
    rename = "password",
    ty = "oauth2",
    flows(password(token_url = "/oauth/token", scopes = "GatehouseScopes"))
)]
pub struct PasswordFlow(pub Bearer);

/// Paste an access token.
#[derive(SecurityScheme)]
#[oai(rename = "bearer", ty = "bearer", bearer_format = "JWT")]
pub struct BearerToken(pub Bearer);

/// An access token from either scheme.
#[derive(SecurityScheme)]
pub enum AccessToken {
    /// From the password flow.
    Password(PasswordFlow),
    /// Given directly.
    Bearer(BearerToken),
}

impl AccessToken {
    /// The raw token.
    pub fn token(&self) -> &str {
        match self {
            AccessToken::Password(p) => &p.0.token,
            AccessToken::Bearer(b) => &b.0.token,
        }
    }
}
