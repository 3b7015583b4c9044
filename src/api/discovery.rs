//! `/.well-known/*`: the JWK Set (RFC 7517) and OIDC Discovery 1.0.

use poem::web::Data;
use std::marker::PhantomData;

use poem::{IntoResponse, Response};
use poem_openapi::payload::Payload;

use super::json::Json;
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use crate::app::AppState;

/// Discovery and keys.
pub struct DiscoveryApi;

/// One public key (RFC 7517 §4): RSA (RFC 7518 §6.3.1), EC P-256 (§6.2.1)
/// or Ed25519 (OKP, RFC 8037 §2).
#[derive(Debug, Object)]
pub struct JwkObject {
    /// `RSA`, `EC` or `OKP`.
    pub kty: String,
    /// `sig`.
    #[oai(rename = "use")]
    pub use_: String,
    /// `RS256`, `ES256` or `EdDSA`: the algorithm the key signs with.
    pub alg: String,
    /// Key id (its RFC 7638 thumbprint), matching the `kid` of token headers.
    pub kid: String,
    /// RSA: modulus (base64url).
    pub n: Option<String>,
    /// RSA: exponent (base64url).
    pub e: Option<String>,
    /// EC and OKP: the curve, `P-256` or `Ed25519`.
    pub crv: Option<String>,
    /// EC: the x coordinate; OKP: the public key (base64url).
    pub x: Option<String>,
    /// EC: the y coordinate (base64url).
    pub y: Option<String>,
}

/// A JWK Set.
#[derive(Debug, Object)]
pub struct JwkSet {
    /// Every key whose tokens may be live, and the next key.
    pub keys: Vec<JwkObject>,
}

/// JSON bytes rendered ahead of time, documented as `T`.
pub struct PreparedJson<T>(pub Vec<u8>, pub PhantomData<T>);

use super::payload::JSON;

impl<T: Type> Payload for PreparedJson<T> {
    const CONTENT_TYPE: &'static str = JSON;

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Send> IntoResponse for PreparedJson<T> {
    fn into_response(self) -> Response {
        Response::builder().content_type(JSON).body(self.0)
    }
}

/// JWKS answer, rendered once per key change.
#[derive(ApiResponse)]
pub enum JwksResponse {
    /// The key set, cacheable for `keys.jwks_max_age`.
    #[oai(status = 200)]
    Ok(
        PreparedJson<JwkSet>,
        #[oai(header = "Cache-Control")] String,
    ),
}

/// OIDC Discovery 1.0 §3 provider metadata.
#[derive(Debug, Clone, Object)]
pub struct DiscoveryDocument {
    /// Issuer (`server.public_url`).
    pub issuer: String,
    /// Authorization endpoint (browser login, RFC 6749 §3.1).
    pub authorization_endpoint: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// JWK Set.
    pub jwks_uri: String,
    /// Userinfo.
    pub userinfo_endpoint: String,
    /// RFC 7009 revocation.
    pub revocation_endpoint: String,
    /// RFC 7662 introspection.
    pub introspection_endpoint: String,
    /// OIDC RP-Initiated Logout.
    pub end_session_endpoint: String,
    /// The grant types some configured client may use.
    pub grant_types_supported: Vec<String>,
    /// `code`: the authorization code flow, nothing implicit.
    pub response_types_supported: Vec<String>,
    /// `query`.
    pub response_modes_supported: Vec<String>,
    /// `S256` (PKCE is required; `plain` is refused).
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207: authorization responses carry `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    /// `public`.
    pub subject_types_supported: Vec<String>,
    /// The algorithms of the published keys (`RS256`).
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Client authentication methods.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Revocation client authentication methods.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// Introspection client authentication methods.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// Scopes.
    pub scopes_supported: Vec<String>,
    /// Claims.
    pub claims_supported: Vec<String>,
}

impl DiscoveryDocument {
    /// The document for `issuer`, advertising `grant_types` and nothing
    /// that does not exist (no `registration_endpoint`: in OIDC that key
    /// means RFC 7591 dynamic client registration, not user sign-up).
    pub fn new(issuer: &str, grant_types: Vec<String>, algorithms: Vec<String>) -> Self {
        let v = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let auth = v(&["client_secret_basic", "client_secret_post", "none"]);
        Self {
            issuer: issuer.into(),
            authorization_endpoint: format!("{issuer}/oauth/authorize"),
            token_endpoint: format!("{issuer}/oauth/token"),
            jwks_uri: format!("{issuer}/.well-known/jwks.json"),
            userinfo_endpoint: format!("{issuer}/oauth/userinfo"),
            revocation_endpoint: format!("{issuer}/oauth/revoke"),
            introspection_endpoint: format!("{issuer}/oauth/introspect"),
            end_session_endpoint: format!("{issuer}/oauth/logout"),
            grant_types_supported: grant_types,
            response_types_supported: v(&["code"]),
            response_modes_supported: v(&["query"]),
            code_challenge_methods_supported: v(&["S256"]),
            authorization_response_iss_parameter_supported: true,
            subject_types_supported: v(&["public"]),
            id_token_signing_alg_values_supported: algorithms,
            token_endpoint_auth_methods_supported: auth.clone(),
            revocation_endpoint_auth_methods_supported: auth,
            introspection_endpoint_auth_methods_supported: v(&[
                "client_secret_basic",
                "client_secret_post",
            ]),
            scopes_supported: crate::scope::SUPPORTED
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            claims_supported: v(&[
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "amr",
                "sid",
                "email",
                "email_verified",
                "preferred_username",
                "given_name",
                "family_name",
                "name",
                "phone_number",
                "updated_at",
            ]),
        }
    }
}

#[OpenApi(tag = "ApiTags::Discovery")]
impl DiscoveryApi {
    /// JWK Set
    ///
    /// The public keys relying parties verify tokens with (RFC 7517).
    #[oai(
        path = "/.well-known/jwks.json",
        method = "get",
        operation_id = "get_jwks"
    )]
    async fn jwks(&self, state: Data<&AppState>) -> JwksResponse {
        let max_age = state.live.get().keys.jwks_max_age.as_secs();
        JwksResponse::Ok(
            PreparedJson(state.keys.jwks().to_vec(), PhantomData),
            format!("public, max-age={max_age}"),
        )
    }

    /// OpenID Connect discovery
    #[oai(
        path = "/.well-known/openid-configuration",
        method = "get",
        operation_id = "get_openid_configuration"
    )]
    async fn discovery(&self, state: Data<&AppState>) -> Json<DiscoveryDocument> {
        metadata(&state)
    }

    /// OAuth 2.0 authorization server metadata (RFC 8414)
    ///
    /// The same document as OpenID discovery.
    #[oai(
        path = "/.well-known/oauth-authorization-server",
        method = "get",
        operation_id = "get_oauth_authorization_server"
    )]
    async fn oauth_metadata(&self, state: Data<&AppState>) -> Json<DiscoveryDocument> {
        metadata(&state)
    }
}

/// Built per request from the settings (the issuer and the clients are
/// cold, so it never changes under a running server) and the keys: the
/// app's state stays free of HTTP types.
fn metadata(state: &AppState) -> Json<DiscoveryDocument> {
    let settings = state.live.get();
    Json(DiscoveryDocument::new(
        &settings.server.public_url,
        crate::clients::grant_types_in_use(&settings),
        state
            .keys
            .algorithms()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    ))
}
