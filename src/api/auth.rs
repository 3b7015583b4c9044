//! Security schemes of the spec: OAuth 2.0 (so Swagger UI's Authorize
//! button logs a user in: the code flow with PKCE, or the password flow)
//! and plain bearer.
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
    )
)]
pub struct PasswordFlow(pub Bearer);

/// Paste an access token.
#[derive(SecurityScheme)]
#[oai(rename = "bearer", ty = "bearer", bearer_format = "JWT")]
pub struct BearerToken(pub Bearer);

/// An access token from either scheme.
#[derive(SecurityScheme)]
pub enum AccessToken {
    /// From an OAuth 2.0 flow.
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
