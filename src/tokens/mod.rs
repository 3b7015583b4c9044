//! Tokens: signed access tokens (RFC 9068) and ID tokens (OIDC Core), their
//! verification, and the access-token deny list. The keys and their
//! algorithm are [`crate::keys`]'s; refresh tokens are
//! [`crate::sessions`]'; which grant issues what is [`crate::grants`]'.

pub mod claims;
pub mod denylist;
mod store;
mod verified;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Validation};
use uuid::Uuid;

use crate::clients::Client;
use crate::clock::Clock;
use crate::config::LiveSettings;
use crate::entity::users;
use crate::error::{Error, Result};
use crate::keys::KeyRing;
use crate::scope::Scope;
use crate::workers::Workers;
use claims::{AccessClaims, IdClaims, ProfileClaims};
use denylist::DenyList;
use verified::Verified;

/// Clock skew tolerated when checking `exp` and `nbf`.
const LEEWAY_SECS: i64 = 30;
/// Longest token string looked at.
pub const MAX_TOKEN_LEN: usize = 8192;

/// `typ` of access tokens (RFC 9068 §2.1).
const ACCESS_TYP: &str = "at+jwt";

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// The access token (a JWT).
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The refresh token (opaque).
    pub refresh_token: String,
    /// Granted scope.
    pub scope: String,
    /// ID token when `openid` was granted.
    pub id_token: Option<String>,
}

/// What a token set is signed for.
pub struct Grant<'a> {
    /// The user.
    pub user: &'a users::Model,
    /// The client.
    pub client: &'a Client,
    /// The granted scope.
    pub scope: &'a Scope,
    /// When the user authenticated.
    pub auth_time: DateTime<Utc>,
    /// The refresh family (the access token's `sid`).
    pub family: Uuid,
    /// The authorization request's `nonce`, for the ID token.
    pub nonce: Option<String>,
    /// The browser login session, the ID token's `sid`.
    pub login_session: Option<Uuid>,
}

/// The token service.
#[derive(Clone)]
pub struct Tokens {
    keys: KeyRing,
    live: LiveSettings,
    clock: Clock,
    deny: DenyList,
    issuer: String,
    /// RSA signing, off the async executor (0.4–1 ms a signature).
    signers: Arc<Workers>,
    /// Access tokens whose signature was checked already.
    verified: Verified,
}

/// Checks an access token's form and signature: at most
/// [`MAX_TOKEN_LEN`] bytes, a `kid` that `key_for` knows, signed with that
/// key's algorithm (never `none`, never HMAC keyed with a public key), `typ`
/// `at+jwt` (RFC 9068 §4) or `JWT`, and `iss`. Time and revocation are the
/// caller's.
pub fn verify_jwt(
    token: &str,
    issuer: &str,
    key_for: impl FnOnce(&str) -> Option<(Algorithm, jsonwebtoken::DecodingKey)>,
) -> Result<AccessClaims> {
    let malformed = || {
        Error::InvalidBearer("the access token is malformed or not signed by this server".into())
    };
    if token.len() > MAX_TOKEN_LEN {
        return Err(malformed());
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| malformed())?;
    // `JWT` is what clients with `access_token_typ = "JWT"` get. An ID token
    // (also `JWT`) still cannot pass as an access token: it lacks the
    // `client_id`, `jti` and `scope` claims that decoding requires.
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(ACCESS_TYP)
            || t.eq_ignore_ascii_case("application/at+jwt")
            || t.eq_ignore_ascii_case("JWT")
    });
    if !typ_ok {
        return Err(malformed());
    }
    let (alg, key) = header
        .kid
        .as_deref()
        .and_then(key_for)
        .ok_or_else(malformed)?;
    if header.alg != alg {
        return Err(malformed());
    }
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.validate_aud = false;
    // Time is checked against the app's clock by the caller.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["iss", "sub", "exp"]);
    jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|_| malformed())
}

impl Tokens {
    /// Builds the service.
    pub fn new(keys: KeyRing, live: LiveSettings, clock: Clock, deny: DenyList) -> Result<Self> {
        let issuer = live.get().server.public_url.clone();
        let signers = Arc::new(Workers::start(
            "sign",
            crate::workers::cpus(),
            std::time::Duration::from_secs(3600),
            || {},
        )?);
        Ok(Self {
            signers,
            keys,
            live,
            clock,
            deny,
            issuer,
            verified: Verified::default(),
        })
    }

    /// The issuer (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs the access token (and, with `openid`, the ID token) of `grant`
    /// and answers them with `refresh_token`.
    pub async fn sign(&self, grant: Grant<'_>, refresh_token: String) -> Result<TokenSet> {
        let Grant {
            user,
            client,
            scope,
            auth_time,
            family,
            nonce,
            login_session,
        } = grant;
        let now = self.clock.now();
        let settings = self.live.get();
        let access_ttl = settings.tokens.access_ttl;
        let key = self.keys.signing_key(now, client.signing_alg)?;
        let rsa = key.alg == Algorithm::RS256;
        let iat = now.timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: user.id.to_string(),
            aud: client.audience.clone(),
            client_id: client.id.clone(),
            exp: iat + access_ttl.as_secs() as i64,
            iat,
            nbf: iat,
            jti: Uuid::new_v4().to_string(),
            scope: scope.to_string(),
            email: Some(user.email.clone()),
            email_verified: Some(user.email_verified),
            preferred_username: user.username.clone(),
            roles: user.role_list(),
            sid: Some(family.to_string()),
        };
        let id_claims = scope.has("openid").then(|| IdClaims {
            iss: self.issuer.clone(),
            sub: user.id.to_string(),
            aud: client.id.clone(),
            exp: iat + settings.tokens.id_token_ttl.as_secs() as i64,
            iat,
            auth_time: auth_time.timestamp(),
            nonce,
            amr: vec!["pwd".into()],
            sid: login_session.map(|s| s.to_string()),
            profile: ProfileClaims::of(user, scope),
        });
        let access_typ = client.access_token_typ.as_str();
        let sign = move || {
            let id_token = id_claims
                .map(|c| jsonwebtoken::encode(&key.header("JWT"), &c, &key.encoding))
                .transpose()
                .map_err(Error::internal)?;
            let access_token =
                jsonwebtoken::encode(&key.header(access_typ), &claims, &key.encoding)
                    .map_err(Error::internal)?;
            Ok((access_token, id_token))
        };
        // An RSA signature (0.25–1 ms) goes to the signing workers; an ES256
        // or Ed25519 one (10–20 µs) costs less than the trip there and back.
        let (access_token, id_token) = if rsa {
            self.signers.run(sign).await?
        } else {
            sign()?
        };
        Ok(TokenSet {
            access_token,
            expires_in: access_ttl.as_secs(),
            refresh_token,
            scope: scope.to_string(),
            id_token,
        })
    }

    /// Checks a bearer access token: a published `kid` and its algorithm,
    /// `typ`, our issuer, `exp`/`nbf` with a small leeway, and the deny list.
    pub async fn verify_access(&self, token: &str) -> Result<AccessClaims> {
        let claims = self.verify_except_revocation(token)?;
        let jti = Uuid::parse_str(&claims.jti)
            .map_err(|_| Error::InvalidBearer("malformed token".into()))?;
        if self.deny.is_denied(jti).await? {
            return Err(Error::InvalidBearer("the access token was revoked".into()));
        }
        Ok(claims)
    }

    /// [`Self::verify_access`] without the deny list, for a caller that
    /// reads the deny list in the same query as something else.
    pub fn verify_except_revocation(&self, token: &str) -> Result<AccessClaims> {
        let claims = self.verify_signature(token)?;
        let now = self.clock.now();
        let t = now.timestamp();
        if claims.exp + LEEWAY_SECS <= t {
            return Err(Error::InvalidBearer("the access token expired".into()));
        }
        if claims.nbf - LEEWAY_SECS > t {
            return Err(Error::InvalidBearer(
                "the access token is not valid yet".into(),
            ));
        }
        Uuid::parse_str(&claims.jti).map_err(|_| Error::InvalidBearer("malformed token".into()))?;
        Ok(claims)
    }

    /// Signature, algorithm, `kid`, `typ` and issuer; not time or
    /// revocation. A token verified before, whose key is still published,
    /// is not checked again ([`verified`]).
    pub fn verify_signature(&self, token: &str) -> Result<AccessClaims> {
        if token.len() > MAX_TOKEN_LEN {
            return verify_jwt(token, &self.issuer, |_| None);
        }
        let hash = Verified::hash(token);
        if let Some(claims) = self.verified.get(&hash, |kid| self.keys.is_published(kid)) {
            return Ok(claims);
        }
        let mut signed_by = None;
        let claims = verify_jwt(token, &self.issuer, |kid| {
            signed_by = Some(kid.to_owned());
            self.keys.verifying_key(kid)
        })?;
        if let Some(kid) = signed_by {
            self.verified.insert(hash, kid, claims.clone());
        }
        Ok(claims)
    }

    /// An ID token of ours given back as a logout hint (OIDC RP-Initiated
    /// Logout §2): its signature and issuer, expired or not. Returns its
    /// `aud` (the client) and `sid`.
    pub fn id_token_hint(&self, token: &str) -> Option<(String, Option<String>)> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let header = jsonwebtoken::decode_header(token).ok()?;
        let (alg, key) = self.keys.verifying_key(header.kid.as_deref()?)?;
        if header.alg != alg {
            return None;
        }
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.validate_aud = false;
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iss", "sub", "aud"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .ok()?
            .claims;
        // An access token carries `client_id`; an ID token does not.
        if claims.get("client_id").is_some() {
            return None;
        }
        let aud = claims.get("aud")?.as_str()?.to_owned();
        let sid = claims
            .get("sid")
            .and_then(|s| s.as_str())
            .map(str::to_owned);
        Some((aud, sid))
    }

    /// RFC 7009 for an access token of ours: denies its `jti` for as long
    /// as [`Self::verify_access`] could accept it. `false` when `token` is
    /// not one of our access tokens; another client's is left alone.
    pub async fn revoke(&self, client_id: &str, token: &str) -> Result<bool> {
        let Ok(claims) = self.verify_signature(token) else {
            return Ok(false);
        };
        // RFC 7009 §2.1: a client revokes only tokens issued to it;
        // another's is answered 200 and left alone.
        if claims.client_id != client_id {
            return Ok(true);
        }
        let now = self.clock.now();
        let until = claims.exp.saturating_add(LEEWAY_SECS);
        if let Ok(jti) = Uuid::parse_str(&claims.jti)
            && until > now.timestamp()
        {
            let until = DateTime::from_timestamp(until, 0).unwrap_or(now);
            self.deny.deny(jti, until).await?;
            tracing::info!(user.id = %claims.sub, "access token revoked");
        }
        Ok(true)
    }

    /// Deletes deny-list rows of tokens that expired anyway.
    pub async fn sweep(&self) -> Result<u64> {
        self.deny.sweep(self.clock.now()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::Header;
    use proptest::prelude::*;

    fn test_key() -> (jsonwebtoken::EncodingKey, jsonwebtoken::DecodingKey) {
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        static KEY: std::sync::OnceLock<rsa::RsaPrivateKey> = std::sync::OnceLock::new();
        let key = KEY.get_or_init(|| {
            rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("key")
        });
        crate::keys::signer::install();
        let der = key.to_pkcs1_der().expect("der");
        (
            jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes()),
            jsonwebtoken::DecodingKey::from_rsa_raw_components(
                &key.n().to_bytes_be(),
                &key.e().to_bytes_be(),
            ),
        )
    }

    fn sign(header: &Header, claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(header, claims, &test_key().0).expect("sign")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_strings_never_verify_and_never_panic(token in ".{0,300}") {
            let (_, dk) = test_key();
            prop_assert!(verify_jwt(&token, "https://iss", |_| Some((Algorithm::RS256, dk.clone()))).is_err());
        }

        #[test]
        fn arbitrary_headers_and_kids_are_refused_unless_ours(kid in ".{0,40}", typ in "[a-z+/]{0,20}") {
            let (_, dk) = test_key();
            let mut h = Header::new(Algorithm::RS256);
            h.kid = Some(kid.clone());
            h.typ = Some(typ.clone());
            let t = sign(&h, &serde_json::json!({"iss": "https://iss", "sub": "u", "exp": 1, "iat": 0, "nbf": 0, "jti": "j", "aud": "a", "client_id": "c", "scope": ""}));
            let known = |k: &str| (k == "ours").then(|| (Algorithm::RS256, dk.clone()));
            let ok = verify_jwt(&t, "https://iss", known).is_ok();
            prop_assert_eq!(ok, kid == "ours" && (typ == "at+jwt" || typ == "application/at+jwt" || typ == "jwt"));
        }
    }
}
