//! `/oauth/*`: token (RFC 6749), revoke (RFC 7009), introspect (RFC 7662),
//! userinfo (OIDC Core §5.3). Bodies are form-encoded or JSON.

use poem::Request;
use poem::web::Data;
use poem_openapi::{ApiRequest, ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use super::auth::AccessToken;
use super::error::ApiError;
use super::json::Json;
use super::payload::{StrictForm, StrictJson};
use super::types::TokenResponse;
use crate::app::AppState;
use crate::clients::{self, Credentials};
use crate::error::Error;
use crate::oauth::Introspection;
use crate::tokens::MAX_TOKEN_LEN;
use crate::tokens::claims::ProfileClaims;

/// `/oauth/*` endpoints.
pub struct OAuthApi;

/// Token request (RFC 6749 §4.3.2 and §6). Parameters it does not know
/// are ignored (RFC 6749 §3.2).
#[derive(Debug, Default, Deserialize, Object)]
pub struct TokenRequest {
    /// `authorization_code`, `password` or `refresh_token`.
    #[serde(default)]
    pub grant_type: String,
    /// `authorization_code` grant: the code from the redirect.
    pub code: Option<String>,
    /// `authorization_code` grant: the redirect URI of the authorization
    /// request, exactly.
    pub redirect_uri: Option<String>,
    /// `authorization_code` grant: the PKCE code verifier (RFC 7636).
    pub code_verifier: Option<String>,
    /// `password` grant: the email or username.
    pub username: Option<String>,
    /// `password` grant: the password.
    pub password: Option<String>,
    /// Space-separated scopes; default `tokens.default_scope` (password) or
    /// the original grant (refresh).
    pub scope: Option<String>,
    /// `refresh_token` grant: the refresh token.
    pub refresh_token: Option<String>,
    /// Client id (public clients, or with `client_secret`).
    pub client_id: Option<String>,
    /// Client secret (confidential clients not using HTTP Basic).
    pub client_secret: Option<String>,
}

/// Token request body.
#[derive(ApiRequest)]
pub enum TokenBody {
    /// Form-encoded (RFC 6749).
    Form(StrictForm<TokenRequest>),
    /// JSON with the same fields.
    Json(StrictJson<TokenRequest>),
}

/// Revocation or introspection request (RFC 7009 §2.1, RFC 7662 §2.1).
#[derive(Debug, Default, Deserialize, Object)]
pub struct TokenCheckRequest {
    /// The token.
    #[serde(default)]
    pub token: String,
    /// `access_token` or `refresh_token`.
    pub token_type_hint: Option<String>,
    /// Client id.
    pub client_id: Option<String>,
    /// Client secret.
    pub client_secret: Option<String>,
}

/// Revocation or introspection body.
#[derive(ApiRequest)]
pub enum TokenCheckBody {
    /// Form-encoded.
    Form(StrictForm<TokenCheckRequest>),
    /// JSON.
    Json(StrictJson<TokenCheckRequest>),
}

/// Token issued.
#[derive(ApiResponse)]
pub enum TokenIssued {
    /// Tokens (`Cache-Control: no-store`, RFC 6749 §5.1).
    #[oai(status = 200)]
    Ok(
        Json<TokenResponse>,
        #[oai(header = "Cache-Control")] String,
        #[oai(header = "Pragma")] String,
    ),
}

/// Revocation done.
#[derive(ApiResponse)]
pub enum Revoked {
    /// Revoked, or was not a live token (RFC 7009 §2.2: the same answer).
    #[oai(status = 200)]
    Ok,
}

/// RFC 7662 §2.2 introspection response.
#[derive(Debug, Object)]
pub struct IntrospectionResponse {
    /// Whether the token is live.
    pub active: bool,
    /// Subject.
    #[oai(skip_serializing_if_is_none)]
    pub sub: Option<String>,
    /// Client it was issued to.
    #[oai(skip_serializing_if_is_none)]
    pub client_id: Option<String>,
    /// Scope.
    #[oai(skip_serializing_if_is_none)]
    pub scope: Option<String>,
    /// Expiry (seconds since the epoch).
    #[oai(skip_serializing_if_is_none)]
    pub exp: Option<i64>,
    /// Issue time.
    #[oai(skip_serializing_if_is_none)]
    pub iat: Option<i64>,
    /// Token id.
    #[oai(skip_serializing_if_is_none)]
    pub jti: Option<String>,
    /// `access_token` or `refresh_token`.
    #[oai(skip_serializing_if_is_none)]
    pub token_type: Option<String>,
    /// Username (or email).
    #[oai(skip_serializing_if_is_none)]
    pub username: Option<String>,
    /// Issuer.
    #[oai(skip_serializing_if_is_none)]
    pub iss: Option<String>,
    /// Audience.
    #[oai(skip_serializing_if_is_none)]
    pub aud: Option<String>,
}

impl From<Introspection> for IntrospectionResponse {
    fn from(i: Introspection) -> Self {
        Self {
            active: i.active,
            sub: i.sub,
            client_id: i.client_id,
            scope: i.scope,
            exp: i.exp,
            iat: i.iat,
            jti: i.jti,
            token_type: i.token_type,
            username: i.username,
            iss: i.iss,
            aud: i.aud,
        }
    }
}

/// OIDC userinfo (Core §5.3.2): `sub` and the claims the scope allows.
#[derive(Debug, Object)]
pub struct UserInfo {
    /// Subject.
    pub sub: String,
    /// `email` scope.
    #[oai(skip_serializing_if_is_none)]
    pub email: Option<String>,
    /// `email` scope.
    #[oai(skip_serializing_if_is_none)]
    pub email_verified: Option<bool>,
    /// `profile` scope.
    #[oai(skip_serializing_if_is_none)]
    pub preferred_username: Option<String>,
    /// `profile` scope.
    #[oai(skip_serializing_if_is_none)]
    pub given_name: Option<String>,
    /// `profile` scope.
    #[oai(skip_serializing_if_is_none)]
    pub family_name: Option<String>,
    /// `profile` scope.
    #[oai(skip_serializing_if_is_none)]
    pub name: Option<String>,
    /// `phone` scope.
    #[oai(skip_serializing_if_is_none)]
    pub phone_number: Option<String>,
    /// `profile` scope (seconds since the epoch).
    #[oai(skip_serializing_if_is_none)]
    pub updated_at: Option<i64>,
}

fn no_store() -> (String, String) {
    ("no-store".into(), "no-cache".into())
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1) or from the body;
/// using both is `invalid_request`.
fn credentials(
    req: &Request,
    id: Option<String>,
    secret: Option<String>,
) -> Result<Credentials, Error> {
    let header = match req.headers().get("authorization") {
        Some(h) => h.to_str().map_err(|_| Error::InvalidClient)?,
        None => return Ok(Credentials { id, secret }),
    };
    // A bearer header on these endpoints is not client authentication.
    let Some((basic_id, basic_secret)) = clients::parse_basic(header)? else {
        return Ok(Credentials { id, secret });
    };
    if secret.is_some() {
        return Err(Error::InvalidRequest(
            "use one client authentication method, not two".into(),
        ));
    }
    if id
        .as_deref()
        .is_some_and(|i| !i.is_empty() && i != basic_id)
    {
        return Err(Error::InvalidClient);
    }
    Ok(Credentials {
        id: Some(basic_id).filter(|s| !s.is_empty()).or(id),
        secret: Some(basic_secret).filter(|s| !s.is_empty()),
    })
}

fn check_token_len(token: &str) -> Result<(), Error> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::InvalidRequest(format!(
            "token must be at most {MAX_TOKEN_LEN} bytes"
        )));
    }
    Ok(())
}

#[OpenApi(tag = "ApiTags::OAuth")]
impl OAuthApi {
    /// Token endpoint (RFC 6749 §3.2)
    ///
    /// `grant_type=authorization_code` exchanges the code of a browser login
    /// (with its PKCE verifier) for tokens; `grant_type=password` an email
    /// (or username) and password, for clients allowed to;
    /// `grant_type=refresh_token` rotates a refresh token.
    /// Refresh tokens are single use: presenting a rotated one revokes its
    /// whole family, except within `tokens.refresh_reuse_grace` of the
    /// rotation, when the same child is returned again.
    #[oai(path = "/oauth/token", method = "post", operation_id = "create_token")]
    async fn token(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: TokenBody,
    ) -> Result<TokenIssued, ApiError> {
        let (TokenBody::Form(StrictForm(r)) | TokenBody::Json(StrictJson(r))) = body;
        let settings = state.live.get();
        let creds = credentials(req, r.client_id, r.client_secret)?;
        let client = clients::authenticate(&settings, &creds)?;
        let ip = super::client_ip(req);
        let tokens = match r.grant_type.as_str() {
            crate::grants::AUTHORIZATION_CODE => {
                state
                    .oauth
                    .code_grant(
                        &client,
                        r.code.as_deref().unwrap_or_default(),
                        r.redirect_uri.as_deref().unwrap_or_default(),
                        r.code_verifier.as_deref().unwrap_or_default(),
                        ip,
                    )
                    .await?
            }
            crate::grants::PASSWORD => {
                state
                    .oauth
                    .password_grant(
                        &client,
                        r.username.as_deref().unwrap_or_default(),
                        r.password.as_deref().unwrap_or_default(),
                        r.scope.as_deref(),
                        ip,
                    )
                    .await?
            }
            crate::grants::REFRESH_TOKEN => {
                let token = r.refresh_token.as_deref().unwrap_or_default();
                check_token_len(token)?;
                state
                    .oauth
                    .refresh_grant(&client, token, r.scope.as_deref(), ip)
                    .await?
            }
            "" => {
                return Err(Error::InvalidRequest("grant_type is required".into()).into());
            }
            _ => return Err(Error::UnsupportedGrantType.into()),
        };
        let (cc, pragma) = no_store();
        Ok(TokenIssued::Ok(Json(tokens.into()), cc, pragma))
    }

    /// Revoke a token (RFC 7009) — logout
    ///
    /// A refresh token revokes its whole family; an access token is denied
    /// until it expires. Unknown or already revoked tokens answer 200 too.
    #[oai(path = "/oauth/revoke", method = "post", operation_id = "revoke_token")]
    async fn revoke(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: TokenCheckBody,
    ) -> Result<Revoked, ApiError> {
        let (TokenCheckBody::Form(StrictForm(r)) | TokenCheckBody::Json(StrictJson(r))) = body;
        let settings = state.live.get();
        let creds = credentials(req, r.client_id, r.client_secret)?;
        let client = clients::authenticate(&settings, &creds)?;
        let token = Some(r.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::InvalidRequest("token is required".into()))?;
        check_token_len(&token)?;
        state
            .oauth
            .revoke(
                &client,
                &token,
                r.token_type_hint.as_deref(),
                super::client_ip(req),
            )
            .await?;
        Ok(Revoked::Ok)
    }

    /// Introspect a token (RFC 7662)
    ///
    /// For resource servers, authenticated as a confidential client.
    /// Expired, revoked, malformed or unknown tokens answer `{"active": false}`.
    #[oai(
        path = "/oauth/introspect",
        method = "post",
        operation_id = "introspect_token"
    )]
    async fn introspect(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: TokenCheckBody,
    ) -> Result<Json<IntrospectionResponse>, ApiError> {
        let (TokenCheckBody::Form(StrictForm(r)) | TokenCheckBody::Json(StrictJson(r))) = body;
        let settings = state.live.get();
        let creds = credentials(req, r.client_id, r.client_secret)?;
        let client = clients::authenticate(&settings, &creds)?;
        if !client.confidential {
            return Err(Error::InvalidClient.into());
        }
        let token = Some(r.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::InvalidRequest("token is required".into()))?;
        if token.len() > MAX_TOKEN_LEN {
            return Ok(Json(Introspection::default().into()));
        }
        Ok(Json(
            state
                .oauth
                .introspect(&token, super::client_ip(req))
                .await?
                .into(),
        ))
    }

    /// OIDC userinfo (GET)
    ///
    /// The claims of the token's user that its scope allows, read from the
    /// database so a profile change shows at once.
    #[oai(
        path = "/oauth/userinfo",
        method = "get",
        operation_id = "get_userinfo"
    )]
    async fn userinfo_get(&self, auth: AccessToken) -> Result<Json<UserInfo>, ApiError> {
        userinfo(auth).await
    }

    /// OIDC userinfo (POST)
    ///
    /// The same as GET (OIDC Core §5.3.1).
    #[oai(
        path = "/oauth/userinfo",
        method = "post",
        operation_id = "post_userinfo"
    )]
    async fn userinfo_post(&self, auth: AccessToken) -> Result<Json<UserInfo>, ApiError> {
        userinfo(auth).await
    }
}

async fn userinfo(auth: AccessToken) -> Result<Json<UserInfo>, ApiError> {
    let crate::oauth::Caller { claims, user } = auth.caller();
    let scope = crate::scope::Scope::parse(&claims.scope).map_err(Error::from)?;
    // OIDC Core §5.3: userinfo is for tokens of an OpenID request.
    if !scope.has("openid") {
        return Err(Error::InsufficientScope("openid".into()).into());
    }
    let p = ProfileClaims::of(&user, &scope);
    Ok(Json(UserInfo {
        sub: claims.sub,
        email: p.email,
        email_verified: p.email_verified,
        preferred_username: p.preferred_username,
        given_name: p.given_name,
        family_name: p.family_name,
        name: p.name,
        phone_number: p.phone_number,
        updated_at: p.updated_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_form_body_parses_or_is_refused_without_panicking(body in ".{0,300}") {
            let _ = serde_urlencoded::from_str::<TokenRequest>(&body);
        }

        #[test]
        fn any_json_body_parses_or_is_refused_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = serde_json::from_slice::<TokenRequest>(&body);
        }

        #[test]
        fn form_fields_survive_encoding(user in ".{0,60}", pass in ".{0,60}") {
            let body = serde_urlencoded::to_string([("grant_type", "password"), ("username", &user), ("password", &pass)]).expect("encode");
            let r: TokenRequest = serde_urlencoded::from_str(&body).expect("decode");
            prop_assert_eq!(r.username.as_deref(), Some(user.as_str()));
            prop_assert_eq!(r.password.as_deref(), Some(pass.as_str()));
        }
    }
}
