//! The authorization code flow (RFC 6749 §4.1, OIDC Core §3.1, PKCE RFC
//! 7636, RFC 9207): checking an authorization request, issuing a code for
//! a logged-in browser, and exchanging it at the token endpoint.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};
use sha2::{Digest, Sha256};

use super::{Login, OAuth};
use crate::clients::{self, Client};
use crate::config::Settings;
use crate::entity::authorization_codes::{self, Column, Entity};
use crate::entity::login_sessions;
use crate::error::{Error, Result};
use crate::grants;
use crate::scope::Scope;
use crate::secrets::sha256_hex;
use crate::tokens::TokenSet;

/// How long a code lives (RFC 6749 §4.1.2 recommends at most 10 minutes;
/// the contract says at most 60 s).
const CODE_TTL_SECS: i64 = 60;

/// How long a login marker counts: the time a person has to log in.
const MARKER_TTL_SECS: i64 = 600;

/// Longest `state`, `nonce` or `login_hint` kept.
const MAX_PARAM_LEN: usize = 1024;

/// `prompt` (OIDC Core §3.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Ask for the password even with a live login session.
    Login,
    /// Never show a page: `login_required` without a session.
    None,
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The client.
    pub client: Client,
    /// Where the answer goes (registered).
    pub redirect_uri: String,
    /// Echoed to the client.
    pub state: Option<String>,
    /// Asked scope.
    pub scope: Scope,
    /// For the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// `prompt`.
    pub prompt: Option<Prompt>,
    /// `max_age`, seconds.
    pub max_age: Option<i64>,
    /// Prefills the login page.
    pub login_hint: Option<String>,
    /// The login marker the hosted login page adds when it sends the
    /// request back ([`OAuth::login_marker`]): with `prompt=login`, only a
    /// login made after the marker's instant counts. Checked by its MAC, so
    /// a marker typed into the URL counts for nothing.
    pub auth_after: Option<String>,
}

/// Why an authorization request cannot go on.
#[derive(Debug, Clone)]
pub enum AuthorizeError {
    /// The client or the redirect URI cannot be trusted: shown to the user
    /// on a page, never redirected (RFC 6749 §4.1.2.1).
    Untrusted(String),
    /// Sent back to the client's redirect URI.
    Redirect(Redirect),
}

/// A redirect to the client with an error (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone)]
pub struct Redirect {
    /// The registered redirect URI.
    pub redirect_uri: String,
    /// Parameters to add to its query.
    pub params: Vec<(&'static str, String)>,
}

impl Redirect {
    /// An authorization response to `redirect_uri`: `params`, then the
    /// request's `state` and the issuer (RFC 9207).
    fn answer(
        redirect_uri: &str,
        mut params: Vec<(&'static str, String)>,
        state: Option<&str>,
        issuer: &str,
    ) -> Self {
        if let Some(s) = state {
            params.push(("state", s.to_owned()));
        }
        params.push(("iss", issuer.to_owned()));
        Self {
            redirect_uri: redirect_uri.to_owned(),
            params,
        }
    }

    /// An error response (RFC 6749 §4.1.2.1).
    fn error(
        redirect_uri: &str,
        state: Option<&str>,
        issuer: &str,
        error: &'static str,
        description: &str,
    ) -> Self {
        let params = vec![
            ("error", error.to_owned()),
            ("error_description", description.to_owned()),
        ];
        Self::answer(redirect_uri, params, state, issuer)
    }

    /// The URL to send the browser to.
    pub fn url(&self) -> String {
        let mut url = self.redirect_uri.clone();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        for (k, v) in &self.params {
            url.push(sep);
            url.push_str(k);
            url.push('=');
            url.extend(form_urlencoded::byte_serialize(v.as_bytes()));
            sep = '&';
        }
        url
    }
}

/// What to do with a checked request.
#[derive(Debug)]
pub enum Outcome {
    /// The browser must log in first, then come back.
    Login,
    /// Send the browser here (a code, or an error for the client).
    Redirect(Redirect),
}

fn get<'a>(params: &'a [(String, String)], key: &str) -> std::result::Result<Option<&'a str>, ()> {
    let mut found = params
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str());
    let first = found.next();
    if found.next().is_some() {
        return Err(());
    }
    Ok(first.filter(|v| !v.is_empty()))
}

/// Checks the parameters of `GET /oauth/authorize`.
pub fn parse(
    settings: &Settings,
    issuer: &str,
    params: &[(String, String)],
) -> std::result::Result<AuthorizationRequest, AuthorizeError> {
    let untrusted = |m: &str| AuthorizeError::Untrusted(m.to_owned());
    let client_id = get(params, "client_id")
        .map_err(|()| untrusted("client_id was given more than once"))?
        .ok_or_else(|| untrusted("the request names no client (client_id is missing)"))?;
    let client = clients::by_id(settings, client_id)
        .ok_or_else(|| untrusted("the application asking you to sign in is not known here"))?;
    let redirect_uri = get(params, "redirect_uri")
        .map_err(|()| untrusted("redirect_uri was given more than once"))?
        .ok_or_else(|| untrusted("the request has no redirect_uri"))?;
    if redirect_uri.len() > 2048 || !client.accepts_redirect(redirect_uri) {
        return Err(untrusted(
            "the redirect_uri is not registered for this application",
        ));
    }
    // From here on errors go back to the client (RFC 6749 §4.1.2.1), with
    // `state` and `iss` (RFC 9207).
    let state = get(params, "state").ok().flatten().map(str::to_owned);
    let fail = |error: &'static str, description: &str| {
        AuthorizeError::Redirect(Redirect::error(
            redirect_uri,
            state.as_deref(),
            issuer,
            error,
            description,
        ))
    };
    let one = |key: &str| {
        get(params, key).map_err(|()| {
            fail(
                "invalid_request",
                &format!("{key} was given more than once"),
            )
        })
    };
    if state.as_ref().is_some_and(|s| s.len() > MAX_PARAM_LEN) || one("state").is_err() {
        return Err(fail("invalid_request", "state is too long or repeated"));
    }
    match one("response_type")? {
        Some("code") => {}
        None => return Err(fail("invalid_request", "response_type is required")),
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if let Some(mode) = one("response_mode")?
        && mode != "query"
    {
        return Err(fail(
            "invalid_request",
            "only response_mode=query is supported",
        ));
    }
    if client.check_grant(grants::AUTHORIZATION_CODE).is_err() {
        return Err(fail(
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    }
    let code_challenge = one("code_challenge")?.ok_or_else(|| {
        fail(
            "invalid_request",
            "PKCE is required: code_challenge is missing",
        )
    })?;
    match one("code_challenge_method")? {
        Some("S256") => {}
        _ => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256 (plain is not accepted)",
            ));
        }
    }
    // BASE64URL(SHA-256(verifier)): 43 characters.
    if code_challenge.len() != 43
        || URL_SAFE_NO_PAD
            .decode(code_challenge)
            .map_or(true, |d| d.len() != 32)
    {
        return Err(fail(
            "invalid_request",
            "code_challenge must be a base64url SHA-256 digest",
        ));
    }
    let scope = Scope::parse(one("scope")?.unwrap_or(&settings.tokens.default_scope))
        .map_err(|e| fail("invalid_scope", &e.to_string()))?;
    let nonce = one("nonce")?.map(str::to_owned);
    let login_hint = one("login_hint")?.map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_PARAM_LEN)
        || login_hint.as_ref().is_some_and(|n| n.len() > 254)
    {
        return Err(fail("invalid_request", "nonce or login_hint is too long"));
    }
    let prompt = match one("prompt")? {
        None => None,
        Some("login") => Some(Prompt::Login),
        Some("none") => Some(Prompt::None),
        Some(p) if p.split(' ').any(|v| v == "none") => {
            return Err(fail("invalid_request", "prompt=none cannot be combined"));
        }
        Some(_) => {
            return Err(fail("invalid_request", "prompt supports login and none"));
        }
    };
    let max_age = match one("max_age")? {
        None => None,
        Some(v) => Some(
            v.parse::<u32>()
                .map_err(|_| fail("invalid_request", "max_age must be a number of seconds"))?
                .into(),
        ),
    };
    let auth_after = one("auth_after")?.map(str::to_owned);
    Ok(AuthorizationRequest {
        client,
        redirect_uri: redirect_uri.to_owned(),
        state,
        scope,
        nonce,
        code_challenge: code_challenge.to_owned(),
        prompt,
        max_age,
        login_hint,
        auth_after,
    })
}

impl AuthorizationRequest {
    /// An error redirect for this request.
    pub fn error(&self, issuer: &str, error: &'static str, description: &str) -> Redirect {
        Redirect::error(
            &self.redirect_uri,
            self.state.as_deref(),
            issuer,
            error,
            description,
        )
    }

    /// Whether `session` may answer this request without a new password;
    /// `auth_after` is the checked login marker's instant, if any: a login
    /// made after it satisfies `prompt=login` and `max_age` (the browser
    /// just came back from the login page).
    fn satisfied_by(
        &self,
        session: &login_sessions::Model,
        now: DateTime<Utc>,
        auth_after: Option<i64>,
    ) -> bool {
        let auth = session.auth_time.timestamp();
        let fresh = auth_after.is_some_and(|after| auth >= after);
        if self.prompt == Some(Prompt::Login) && !fresh {
            return false;
        }
        if let Some(max) = self.max_age
            && now.timestamp() - auth > max
            && !fresh
        {
            return false;
        }
        true
    }

    /// Whether the login page must add a marker when it sends the browser
    /// back, so that the fresh login counts ([`Self::satisfied_by`]).
    pub fn needs_login_marker(&self) -> bool {
        self.prompt == Some(Prompt::Login) || self.max_age.is_some()
    }
}

/// PKCE (RFC 7636 §4.6): whether `verifier` hashes to `challenge`.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    // §4.1: 43 to 128 unreserved characters.
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    well_formed
        && subtle::ConstantTimeEq::ct_eq(
            URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()))
                .as_bytes(),
            challenge.as_bytes(),
        )
        .into()
}

fn invalid_code() -> Error {
    Error::InvalidGrant("the authorization code is invalid, expired or already used".into())
}

impl OAuth {
    /// Answers a checked authorization request for a browser with the
    /// login session `session` (if any): a code, a login page, or an error.
    pub async fn authorize(
        &self,
        request: &AuthorizationRequest,
        session: Option<&login_sessions::Model>,
        ip: std::net::IpAddr,
    ) -> Result<Outcome> {
        // Each answer may write a code: not unlimited.
        self.limits
            .check(
                crate::limits::LimitKind::UnauthenticatedPerIp,
                &ip.to_string(),
            )
            .await?;
        let issuer = self.tokens.issuer().to_owned();
        let now = self.clock.now();
        let auth_after = request
            .auth_after
            .as_deref()
            .and_then(|m| self.check_login_marker(m));
        let session = session.filter(|s| request.satisfied_by(s, now, auth_after));
        let Some(session) = session else {
            if request.prompt == Some(Prompt::None) {
                return Ok(Outcome::Redirect(request.error(
                    &issuer,
                    "login_required",
                    "the user is not logged in",
                )));
            }
            return Ok(Outcome::Login);
        };
        // The session's user must still be allowed in.
        let usable = self
            .accounts
            .by_id(session.user_id)
            .await?
            .is_some_and(|u| u.activated && !u.disabled);
        if !usable {
            if request.prompt == Some(Prompt::None) {
                return Ok(Outcome::Redirect(request.error(
                    &issuer,
                    "login_required",
                    "the user must log in again",
                )));
            }
            return Ok(Outcome::Login);
        }
        let mut raw = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
        let code = URL_SAFE_NO_PAD.encode(raw);
        let row = authorization_codes::Model {
            code_hash: sha256_hex(code.as_bytes()),
            client_id: request.client.id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            nonce: request.nonce.clone(),
            scope: request.scope.to_string(),
            user_id: session.user_id,
            login_session_id: session.id,
            auth_time: session.auth_time,
            expires_at: now + chrono::Duration::seconds(CODE_TTL_SECS),
            used_at: None,
            family_id: None,
        };
        {
            let _turn = self.writes.enter().await;
            Entity::insert(row.into_active_model())
                .exec_without_returning(&self.db)
                .await?;
        }
        Ok(Outcome::Redirect(Redirect::answer(
            &request.redirect_uri,
            vec![("code", code)],
            request.state.as_deref(),
            &issuer,
        )))
    }

    /// A marker for "a login after now", for the hosted login page to add
    /// to an authorization request it sends back after `prompt=login`:
    /// the instant and a MAC of it under the server key.
    pub fn login_marker(&self) -> String {
        let at = self.clock.now().timestamp().to_string();
        let mac = self.server_key.mac(&[b"auth-after", at.as_bytes()]);
        format!("{at}.{}", URL_SAFE_NO_PAD.encode(&mac[..16]))
    }

    /// The instant of a marker made by [`Self::login_marker`], if its MAC
    /// holds and it is at most [`MARKER_TTL_SECS`] old.
    fn check_login_marker(&self, marker: &str) -> Option<i64> {
        let (at, mac) = marker.split_once('.')?;
        let expected = self.server_key.mac(&[b"auth-after", at.as_bytes()]);
        let given = URL_SAFE_NO_PAD.decode(mac).ok()?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            &expected[..16],
            given.as_slice(),
        )) {
            return None;
        }
        let at: i64 = at.parse().ok()?;
        (self.clock.now().timestamp() - at <= MARKER_TTL_SECS).then_some(at)
    }

    /// RFC 6749 §4.1.3: exchanges a code for tokens. A code works once; a
    /// second use revokes what the first issued (§4.1.2).
    pub async fn code_grant(
        &self,
        client: &Client,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        ip: std::net::IpAddr,
    ) -> Result<TokenSet> {
        client.check_grant(grants::AUTHORIZATION_CODE)?;
        self.limits
            .check(
                crate::limits::LimitKind::UnauthenticatedPerIp,
                &ip.to_string(),
            )
            .await?;
        if code.is_empty() || redirect_uri.is_empty() || verifier.is_empty() {
            return Err(Error::InvalidRequest(
                "code, redirect_uri and code_verifier are required".into(),
            ));
        }
        if code.len() > 128 {
            return Err(invalid_code());
        }
        let db = &self.db;
        let now = self.clock.now();
        let hash = sha256_hex(code.as_bytes());
        // Single use: of concurrent exchanges exactly one marks it used.
        let turn = self.writes.enter().await;
        let claimed = Entity::update_many()
            .col_expr(Column::UsedAt, Expr::value(now))
            .filter(Column::CodeHash.eq(hash.as_str()))
            .filter(Column::UsedAt.is_null())
            .exec(db)
            .await?
            .rows_affected
            == 1;
        drop(turn);
        let Some(row) = Entity::find_by_id(hash.clone()).one(db).await? else {
            return Err(invalid_code());
        };
        if !claimed {
            // Only the client the code was issued to ends what it started:
            // anyone else who saw the code cannot revoke a stranger's session.
            if row.client_id == client.id
                && let Some(family) = row.family_id
            {
                self.sessions.revoke_family(family).await?;
                tracing::warn!(user.id = %row.user_id, "authorization code replayed: its tokens were revoked");
            }
            return Err(invalid_code());
        }
        if row.expires_at <= now || row.client_id != client.id || row.redirect_uri != redirect_uri {
            return Err(invalid_code());
        }
        if !pkce_matches(verifier, &row.code_challenge) {
            return Err(Error::InvalidGrant(
                "the code_verifier does not match the code_challenge".into(),
            ));
        }
        // A code outlives neither its login session (logout, a password
        // reset) nor its user's right to log in.
        let session_live = login_sessions::Entity::find_by_id(row.login_session_id)
            .one(db)
            .await?
            .is_some_and(|s| s.ended_at.is_none() && s.expires_at > now);
        if !session_live {
            return Err(invalid_code());
        }
        let user = self
            .accounts
            .by_id(row.user_id)
            .await?
            .filter(|u| u.activated && !u.disabled)
            .ok_or_else(invalid_code)?;
        let scope = Scope::parse(&row.scope)?;
        let (tokens, family) = self
            .start_session_with_family(
                &user,
                client,
                &scope,
                Login {
                    auth_time: Some(row.auth_time),
                    nonce: row.nonce.clone(),
                    login_session: Some(row.login_session_id),
                },
            )
            .await?;
        Entity::update_many()
            .col_expr(Column::FamilyId, Expr::value(family))
            .filter(Column::CodeHash.eq(hash.as_str()))
            .exec(db)
            .await?;
        metrics::counter!("gatehouse_tokens_issued_total", "grant" => "authorization_code")
            .increment(1);
        Ok(tokens)
    }

    /// Deletes codes that expired before `before`.
    pub(super) async fn sweep_codes(&self, before: DateTime<Utc>) -> Result<u64> {
        Ok(Entity::delete_many()
            .filter(Column::ExpiresAt.lt(before))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_an_independent_digest() {
        // BASE64URL(SHA-256(verifier)), computed independently with
        // Python's hashlib and base64.
        let verifier = "dBjftJeZ4CVP-mJ0kLDbHzSd1A2Nn2TS6tfMYtOCknI";
        let challenge = "N8m0YrFbB5c_6kK8l9YvnMYiEdBq9dFAtQiEY_VmPMc";
        assert!(pkce_matches(verifier, challenge));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mJ0kLDbHzSd1A2Nn2TS6tfMYtOCknJ",
            challenge
        ));
        assert!(!pkce_matches("short", challenge));
    }

    #[test]
    fn redirects_encode_their_parameters() {
        let r = Redirect {
            redirect_uri: "https://app.example/cb?x=1".into(),
            params: vec![
                ("state", "a b&c".into()),
                ("iss", "https://id.example".into()),
            ],
        };
        assert_eq!(
            r.url(),
            "https://app.example/cb?x=1&state=a+b%26c&iss=https%3A%2F%2Fid.example"
        );
    }
}
