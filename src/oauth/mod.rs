//! The OAuth 2.0 / OIDC use cases: what a client may exchange at the token
//! endpoint (RFC 6749 §4.1 authorization code, §4.3 password, §6 refresh),
//! revoke (RFC 7009) and introspect (RFC 7662). Each composes the one
//! password check ([`Accounts::authenticate`]), the refresh families
//! ([`Sessions`]) and the signed tokens ([`Tokens`]); a new grant goes here.

pub mod authorize;
mod bearer;
mod revocation;

pub use bearer::Caller;
pub use revocation::Introspection;

use std::net::IpAddr;

use crate::accounts::Accounts;
use crate::clients::Client;
use crate::clock::Clock;
use crate::config::LiveSettings;
use crate::entity::users;
use crate::error::{Error, Result};
use crate::grants;
use crate::limits::{LimitKind, Limiter};
use crate::scope::Scope;
use crate::sessions::Sessions;
use crate::tokens::{Grant, TokenSet, Tokens};

/// The OAuth service.
#[derive(Clone)]
pub struct OAuth {
    db: sea_orm::DatabaseConnection,
    server_key: crate::secrets::ServerKey,
    writes: crate::db::WriteGate,
    inline: crate::db::Inline,
    accounts: Accounts,
    sessions: Sessions,
    tokens: Tokens,
    limits: Limiter,
    live: LiveSettings,
    clock: Clock,
}

/// How a fresh login came about, for the tokens it starts.
#[derive(Debug, Clone, Default)]
pub struct Login {
    /// When the password was checked (now, for the password grant).
    pub auth_time: Option<chrono::DateTime<chrono::Utc>>,
    /// The authorization request's `nonce`.
    pub nonce: Option<String>,
    /// The browser login session.
    pub login_session: Option<uuid::Uuid>,
}

impl OAuth {
    /// Builds the service.
    #[expect(
        clippy::too_many_arguments,
        reason = "the service is wired from its parts once, in app.rs"
    )]
    pub fn new(
        db: sea_orm::DatabaseConnection,
        inline: crate::db::Inline,
        server_key: crate::secrets::ServerKey,
        accounts: Accounts,
        sessions: Sessions,
        tokens: Tokens,
        limits: Limiter,
        live: LiveSettings,
        clock: Clock,
    ) -> Self {
        Self {
            writes: crate::db::WriteGate::for_db(&db),
            inline,
            db,
            server_key,
            accounts,
            sessions,
            tokens,
            limits,
            live,
            clock,
        }
    }

    /// RFC 6749 §4.3: exchanges a username (or email) and password for
    /// tokens, for clients that may use the password grant.
    pub async fn password_grant(
        &self,
        client: &Client,
        login: &str,
        password: &str,
        scope: Option<&str>,
        ip: IpAddr,
    ) -> Result<TokenSet> {
        client.check_grant(grants::PASSWORD)?;
        let settings = self.live.get();
        let scope = Scope::parse(scope.unwrap_or(&settings.tokens.default_scope))?;
        let user = self.accounts.authenticate(login, password, ip).await?;
        let tokens = self
            .start_session(&user, client, &scope, Login::default())
            .await?;
        metrics::counter!("gatehouse_tokens_issued_total", "grant" => "password").increment(1);
        Ok(tokens)
    }

    /// Starts a new refresh family for `user` (a fresh login) and signs its
    /// first token set.
    pub async fn start_session(
        &self,
        user: &users::Model,
        client: &Client,
        scope: &Scope,
        login: Login,
    ) -> Result<TokenSet> {
        Ok(self
            .start_session_with_family(user, client, scope, login)
            .await?
            .0)
    }

    /// [`Self::start_session`], and the family it started.
    async fn start_session_with_family(
        &self,
        user: &users::Model,
        client: &Client,
        scope: &Scope,
        login: Login,
    ) -> Result<(TokenSet, uuid::Uuid)> {
        let auth_time = login.auth_time.unwrap_or_else(|| self.clock.now());
        let started = self
            .sessions
            .start(user.id, &client.id, scope, auth_time, login.login_session)
            .await?;
        let tokens = self
            .tokens
            .sign(
                Grant {
                    user,
                    client,
                    scope,
                    auth_time,
                    family: started.family,
                    nonce: login.nonce,
                    login_session: login.login_session,
                },
                started.refresh_token,
            )
            .await?;
        Ok((tokens, started.family))
    }

    /// RFC 6749 §6: exchanges a refresh token for new tokens, rotating it
    /// ([`Sessions::rotate`]).
    pub async fn refresh_grant(
        &self,
        client: &Client,
        presented: &str,
        scope: Option<&str>,
        ip: IpAddr,
    ) -> Result<TokenSet> {
        client.check_grant(grants::REFRESH_TOKEN)?;
        // Each refresh buys a signature: not unlimited, per client.
        self.limits
            .check(LimitKind::UnauthenticatedPerIp, &ip.to_string())
            .await?;
        if presented.is_empty() {
            return Err(Error::InvalidRequest("refresh_token is required".into()));
        }
        let rotated = self.sessions.rotate(&client.id, presented, scope).await?;
        let parent = &rotated.parent;
        let user = match rotated.user {
            Some(u) => Some(u),
            None => self.accounts.by_id(parent.user_id).await?,
        };
        // A user who may no longer hold tokens ends the family.
        let Some(user) = user.filter(|u| u.activated && !u.disabled) else {
            self.sessions.revoke_family(parent.family_id).await?;
            return Err(Error::InvalidGrant("the account is disabled".into()));
        };
        let tokens = self
            .tokens
            .sign(
                Grant {
                    user: &user,
                    client,
                    scope: &rotated.scope,
                    auth_time: parent.auth_time,
                    family: parent.family_id,
                    nonce: None,
                    login_session: parent.login_session_id,
                },
                rotated.refresh_token,
            )
            .await?;
        metrics::counter!("gatehouse_tokens_issued_total", "grant" => "refresh_token").increment(1);
        Ok(tokens)
    }

    /// The hosted login page's check: the one password check, then a new
    /// browser login session. Returns the cookie value and the session.
    pub async fn log_in(
        &self,
        login: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<(String, crate::entity::login_sessions::Model)> {
        let user = self.accounts.authenticate(login, password, ip).await?;
        metrics::counter!("gatehouse_browser_logins_total").increment(1);
        self.sessions.log_in(user.id).await
    }

    /// The live login session behind a cookie value.
    pub async fn login_session(
        &self,
        cookie: &str,
    ) -> Result<Option<crate::entity::login_sessions::Model>> {
        self.sessions.login_session(cookie).await
    }

    /// Ends a login session and revokes the refresh families started from it.
    pub async fn log_out(&self, login_session: uuid::Uuid) -> Result<u64> {
        self.sessions.log_out(login_session).await
    }

    /// The client and login session an ID token names, for logout.
    pub fn id_token_hint(&self, token: &str) -> Option<(String, Option<String>)> {
        self.tokens.id_token_hint(token)
    }

    /// A new CSRF token for the hosted pages: 128 random bits and a MAC of
    /// them under the server key, so a cookie planted by someone else (a
    /// sibling host over plain http) is not one of ours.
    pub fn new_csrf_token(&self) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut raw = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
        let mac = self.server_key.mac(&[b"csrf", &raw]);
        format!("{}.{}", b64.encode(raw), b64.encode(&mac[..16]))
    }

    /// Whether `token` was made by [`Self::new_csrf_token`].
    pub fn csrf_token_valid(&self, token: &str) -> bool {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let Some((raw, mac)) = token.split_once('.') else {
            return false;
        };
        let (Ok(raw), Ok(mac)) = (b64.decode(raw), b64.decode(mac)) else {
            return false;
        };
        let expected = self.server_key.mac(&[b"csrf", &raw]);
        raw.len() == 16
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                &expected[..16],
                mac.as_slice(),
            ))
    }

    /// Checks a bearer access token ([`Tokens::verify_access`]).
    pub async fn verify_access(&self, token: &str) -> Result<crate::tokens::claims::AccessClaims> {
        self.tokens.verify_access(token).await
    }

    /// Deletes expired refresh tokens and deny-list rows.
    pub async fn sweep(&self) -> Result<u64> {
        let codes = self.sweep_codes(self.clock.now()).await?;
        Ok(self.sessions.sweep().await? + self.tokens.sweep().await? + codes)
    }
}
