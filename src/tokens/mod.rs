//! Tokens: the OAuth 2.0 token endpoint's grants (RFC 6749 §4.3 password,
//! §6 refresh), signed access tokens (RFC 9068) and ID tokens (OIDC Core),
//! refresh-token rotation with reuse detection (RFC 9700 §4.14), revocation
//! (RFC 7009) and introspection (RFC 7662).

pub mod claims;
pub mod denylist;
pub mod store;

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header, Validation};
use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbBackend, TransactionTrait};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::accounts;
use crate::clients::Client;
use crate::clock::{Clock, chrono_duration};
use crate::config::LiveSettings;
use crate::entity::{refresh_tokens, users};
use crate::error::{Error, Result};
use crate::keys::KeyRing;
use crate::limits::{LimitKind, Limiter};
use crate::passwords::{Hasher, Verified};
use crate::scope::Scope;
use crate::secrets::{ServerKey, sha256_hex};
use crate::workers::Workers;
use claims::{AccessClaims, IdClaims, ProfileClaims};
use denylist::DenyList;

/// Clock skew tolerated when checking `exp` and `nbf`.
const LEEWAY_SECS: i64 = 30;
/// Longest token string looked at.
pub const MAX_TOKEN_LEN: usize = 8192;
/// How long a source that logged in successfully keeps its own budget
/// when the account's failure ceiling is spent.
pub const KNOWN_SOURCE_FOR: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// `typ` of access tokens (RFC 9068 §2.1).
const ACCESS_TYP: &str = "at+jwt";
/// What a wrong email and a wrong password both say.
const BAD_CREDENTIALS: &str = "the username or password is incorrect";

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

/// RFC 7662 §2.2 answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Introspection {
    /// Whether the token is live.
    pub active: bool,
    /// Subject.
    pub sub: Option<String>,
    /// Client.
    pub client_id: Option<String>,
    /// Scope.
    pub scope: Option<String>,
    /// Expiry.
    pub exp: Option<i64>,
    /// Issue time.
    pub iat: Option<i64>,
    /// Token id.
    pub jti: Option<String>,
    /// `access_token` or `refresh_token`.
    pub token_type: Option<String>,
    /// Username or email.
    pub username: Option<String>,
    /// Issuer.
    pub iss: Option<String>,
    /// Audience.
    pub aud: Option<String>,
}

/// The token service.
#[derive(Clone)]
pub struct Tokens {
    db: DatabaseConnection,
    keys: KeyRing,
    live: LiveSettings,
    clock: Clock,
    server_key: ServerKey,
    deny: DenyList,
    hasher: Hasher,
    limits: Limiter,
    issuer: String,
    writes: crate::db::WriteGate,
    /// RSA signing, off the async executor (0.4–1 ms a signature).
    signers: Arc<Workers>,
}

/// Refresh token wire form: base64url(id ‖ secret ‖ tag), 64 bytes.
///
/// - `secret`, 256 bits: random for the first token of a family; for a
///   child, HMAC(server key, parent's value, child id). The child's value can
///   then be derived again from the parent's for the grace window, without
///   storing any token value (only SHA-256 hashes are stored), and guessing
///   any token of a family means guessing its 256 random bits or the key.
/// - `tag`, 128 bits of HMAC(server key, id ‖ secret): a forged token is
///   refused without a query.
///
/// Tokens of the first form, base64url(id ‖ HMAC(key, "refresh", id)),
/// 48 bytes, are still read until they expire.
fn refresh_value(key: &ServerKey, id: Uuid, secret: &[u8; 32]) -> String {
    let mut raw = Vec::with_capacity(64);
    raw.extend_from_slice(id.as_bytes());
    raw.extend_from_slice(secret);
    raw.extend_from_slice(&key.mac(&[b"refresh-tag", id.as_bytes(), secret])[..16]);
    URL_SAFE_NO_PAD.encode(raw)
}

/// The first token of a family: a fresh random secret.
fn root_refresh_value(key: &ServerKey, id: Uuid) -> String {
    let mut secret = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
    refresh_value(key, id, &secret)
}

/// A rotation's child, derived from the parent's value as presented.
fn child_refresh_value(key: &ServerKey, parent_value: &str, child: Uuid) -> String {
    let secret = key.mac(&[b"refresh-child", parent_value.as_bytes(), child.as_bytes()]);
    refresh_value(key, child, &secret)
}

fn parse_refresh(key: &ServerKey, value: &str) -> Option<Uuid> {
    if value.len() > 128 {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(value).ok()?;
    let id = Uuid::from_slice(raw.get(..16)?).ok()?;
    match raw.len() {
        64 => {
            let tag = key.mac(&[b"refresh-tag", id.as_bytes(), &raw[16..48]]);
            bool::from(tag[..16].ct_eq(&raw[48..])).then_some(id)
        }
        48 => {
            let mac = key.mac(&[b"refresh", id.as_bytes()]);
            bool::from(mac.ct_eq(&raw[16..])).then_some(id)
        }
        _ => None,
    }
}

fn invalid_refresh() -> Error {
    Error::InvalidGrant("the refresh token is invalid, expired or revoked".into())
}

/// The scope of a refreshed token set: `asked` if it stays within what was
/// `granted` (RFC 6749 §6), else the whole grant.
fn narrowed(granted: &str, asked: Option<&Scope>) -> Result<Scope> {
    let granted = Scope::parse(granted)?;
    match asked {
        Some(asked) if !asked.is_subset_of(&granted) => Err(Error::InvalidScope(
            "the scope may not exceed the original grant".into(),
        )),
        Some(asked) => Ok(asked.clone()),
        None => Ok(granted),
    }
}

/// Checks an access token's form and signature: at most
/// [`MAX_TOKEN_LEN`] bytes, RS256 only (never `none`, never HMAC keyed with
/// the public key), `typ` `at+jwt` (RFC 9068 §4), a `kid` that `key_for`
/// knows, and `iss`. Time and revocation are the caller's.
pub fn verify_jwt(
    token: &str,
    issuer: &str,
    key_for: impl Fn(&str) -> Option<jsonwebtoken::DecodingKey>,
) -> Result<AccessClaims> {
    let malformed = || {
        Error::InvalidBearer("the access token is malformed or not signed by this server".into())
    };
    if token.len() > MAX_TOKEN_LEN {
        return Err(malformed());
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| malformed())?;
    if header.alg != Algorithm::RS256 {
        return Err(malformed());
    }
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
    let key = header
        .kid
        .as_deref()
        .and_then(key_for)
        .ok_or_else(malformed)?;
    let mut validation = Validation::new(Algorithm::RS256);
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
    #[expect(
        clippy::too_many_arguments,
        reason = "the service is wired from its parts once, in app.rs"
    )]
    pub fn new(
        db: DatabaseConnection,
        keys: KeyRing,
        live: LiveSettings,
        clock: Clock,
        server_key: ServerKey,
        deny: DenyList,
        hasher: Hasher,
        limits: Limiter,
    ) -> Result<Self> {
        let issuer = live.get().server.public_url.clone();
        let writes = crate::db::WriteGate::for_db(&db);
        let signers = Arc::new(Workers::start(
            "rsa-sign",
            crate::workers::cpus(),
            std::time::Duration::from_secs(3600),
            || {},
        )?);
        Ok(Self {
            signers,
            writes,
            db,
            keys,
            live,
            clock,
            server_key,
            deny,
            hasher,
            limits,
            issuer,
        })
    }

    /// The issuer (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// RFC 6749 §4.3: exchanges a username (or email) and password for tokens.
    ///
    /// Failed attempts are throttled per (account, client IP) and per account;
    /// an attempt is reserved before the password is checked so parallel
    /// guesses cannot slip past the limit, and given back when it succeeds.
    /// A throttled attempt answers exactly as a wrong password does.
    pub async fn password_grant(
        &self,
        client: &Client,
        login: &str,
        password: &str,
        scope: Option<&str>,
        ip: IpAddr,
    ) -> Result<TokenSet> {
        client.check_grant("password")?;
        let settings = self.live.get();
        let scope = Scope::parse(scope.unwrap_or(&settings.tokens.default_scope))?;
        if login.is_empty() || password.is_empty() {
            return Err(Error::InvalidRequest(
                "username and password are required".into(),
            ));
        }
        if login.chars().count() > 254 || password.chars().count() > crate::passwords::MAX_LEN {
            return Err(Error::InvalidGrant(BAD_CREDENTIALS.into()));
        }
        self.limits
            .check(LimitKind::LoginPerIp, &ip.to_string())
            .await?;

        let user = accounts::store::find_by_login(&self.db, login).await?;
        // Unknown accounts are throttled under their login name, like real ones.
        let account = user
            .as_ref()
            .map_or_else(|| accounts::fields::canonical(login), |u| u.id.to_string());
        let source = ip.to_string();
        let per_ip = format!("{account}|{source}");
        let now = self.clock.now();
        // The (account, source) budget first: every source, the owner's too,
        // has its own. Then the account's ceiling across all sources, which
        // stops distributed guessing, except for a source the account has
        // logged in from before: strangers spending the ceiling elsewhere
        // cannot lock the owner out of where they usually log in.
        let reserved_ip = self
            .limits
            .reserve(LimitKind::LoginFailuresPerAccountIp, &per_ip)
            .await;
        let reserved_all = reserved_ip
            && self
                .limits
                .reserve(LimitKind::LoginFailuresPerAccount, &account)
                .await;
        let owners_source = reserved_ip && !reserved_all && {
            match &user {
                Some(u) => {
                    accounts::store::is_known_source(
                        &self.db,
                        u.id,
                        &source,
                        now - chrono_duration(KNOWN_SOURCE_FOR),
                    )
                    .await?
                }
                None => false,
            }
        };
        if !(reserved_all || owners_source) {
            if reserved_ip {
                self.limits
                    .refund(LimitKind::LoginFailuresPerAccountIp, &per_ip)
                    .await;
            }
            // As long as a real check, so the answer does not tell.
            let _ = self.hasher.verify(None, password).await;
            metrics::counter!("gatehouse_login_failures_total", "reason" => "throttled")
                .increment(1);
            tracing::info!(client.ip = %ip, "password grant throttled");
            return Err(Error::InvalidGrant(BAD_CREDENTIALS.into()));
        }

        let verified = self
            .hasher
            .verify(user.as_ref().map(|u| u.password_hash.as_str()), password)
            .await?;
        let Some(user) = user.filter(|_| verified != Verified::No) else {
            metrics::counter!("gatehouse_login_failures_total", "reason" => "bad_credentials")
                .increment(1);
            return Err(Error::InvalidGrant(BAD_CREDENTIALS.into()));
        };
        self.limits
            .refund(LimitKind::LoginFailuresPerAccountIp, &per_ip)
            .await;
        if reserved_all {
            self.limits
                .refund(LimitKind::LoginFailuresPerAccount, &account)
                .await;
        }
        if let Err(e) = accounts::store::remember_source(&self.db, user.id, &source, now).await {
            tracing::warn!(user.id = %user.id, error = %e, "could not record the login's source");
        }
        if !user.activated {
            return Err(Error::InvalidGrant(
                "the account is not activated yet: enter the emailed code".into(),
            ));
        }
        if user.disabled {
            return Err(Error::InvalidGrant("the account is disabled".into()));
        }
        if verified == Verified::YesRehash {
            // Upgrade the hash to the current parameters; a failure only
            // postpones the upgrade to the next login.
            match self.hasher.hash(password).await {
                Ok(h) => {
                    if let Err(e) = accounts::store::upgrade_password_hash(
                        &self.db,
                        user.id,
                        &user.password_hash,
                        &h,
                    )
                    .await
                    {
                        tracing::warn!(user.id = %user.id, error = %e, "could not upgrade a password hash");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not rehash a password"),
            }
        }
        let tokens = self.issue_new_family(&user, client, &scope).await?;
        metrics::counter!("gatehouse_tokens_issued_total", "grant" => "password").increment(1);
        Ok(tokens)
    }

    /// Starts a new token family for `user` (a fresh login).
    pub async fn issue_new_family(
        &self,
        user: &users::Model,
        client: &Client,
        scope: &Scope,
    ) -> Result<TokenSet> {
        let now = self.clock.now();
        let settings = self.live.get();
        let id = Uuid::new_v4();
        let row = refresh_tokens::Model {
            id,
            token_hash: String::new(),
            family_id: id,
            parent_id: None,
            replaced_by: None,
            user_id: user.id,
            client_id: client.id.clone(),
            scope: scope.to_string(),
            auth_time: now,
            created_at: now,
            expires_at: now + chrono_duration(settings.tokens.refresh_ttl),
            rotated_at: None,
            revoked_at: None,
        };
        let refresh = {
            let _turn = self.writes.enter().await;
            self.store_refresh(&self.db, row).await?
        };
        self.sign_set(user, client, scope, now, now, refresh, id)
            .await
    }

    /// RFC 6749 §6: exchanges a refresh token for new tokens, rotating it.
    ///
    /// Presenting a token that was already rotated is reuse (RFC 9700
    /// §4.14.2): the whole family is revoked, unless it comes within
    /// `tokens.refresh_reuse_grace` of the rotation, when the caller gets the
    /// same child again (two browser tabs refreshing at once).
    ///
    /// A live token rotates in one short transaction ([`Self::rotate`]); on
    /// PostgreSQL without a narrowed scope, in one statement that also reads
    /// the user ([`store::rotate_with_user_pg`]).
    pub async fn refresh_grant(
        &self,
        client: &Client,
        presented: &str,
        scope: Option<&str>,
        ip: IpAddr,
    ) -> Result<TokenSet> {
        client.check_grant("refresh_token")?;
        // Each refresh buys an RSA signature: not unlimited, per client.
        self.limits
            .check(LimitKind::UnauthenticatedPerIp, &ip.to_string())
            .await?;
        if presented.is_empty() {
            return Err(Error::InvalidRequest("refresh_token is required".into()));
        }
        let id = parse_refresh(&self.server_key, presented).ok_or_else(invalid_refresh)?;
        let asked = scope.map(Scope::parse).transpose()?;
        let token_hash = sha256_hex(presented.as_bytes());
        let now = self.clock.now();
        let settings = self.live.get();

        let child_id = Uuid::new_v4();
        let child_value = child_refresh_value(&self.server_key, presented, child_id);
        let child_hash = sha256_hex(child_value.as_bytes());
        let child = store::NewChild {
            id: child_id,
            token_hash: &child_hash,
            expires_at: now + chrono_duration(settings.tokens.refresh_ttl),
        };
        // Families logged into before this are past the session's lifetime.
        let born_after = now - chrono_duration(settings.tokens.session_max_lifetime);
        let rotated = if asked.is_none() && self.db.get_database_backend() == DbBackend::Postgres {
            // One statement, one round trip (a narrowed scope must be checked
            // before the rotation commits, so it takes the general path).
            store::rotate_with_user_pg(
                &self.db,
                id,
                &token_hash,
                &client.id,
                child,
                now,
                born_after,
            )
            .await?
            .map(|(parent, user)| (parent, Some(user)))
        } else {
            self.rotate(
                id,
                &token_hash,
                client,
                child,
                asked.as_ref(),
                now,
                born_after,
            )
            .await?
            .map(|parent| (parent, None))
        };
        let (parent, child_value, user) = match rotated {
            Some((parent, user)) => (parent, child_value, user),
            None => {
                let (parent, child_value) = self
                    .replayed(
                        client,
                        id,
                        presented,
                        &token_hash,
                        now,
                        born_after,
                        settings.tokens.refresh_reuse_grace,
                    )
                    .await?;
                (parent, child_value, None)
            }
        };
        let scope = narrowed(&parent.scope, asked.as_ref())?;
        let user = match user {
            Some(u) => Some(u),
            None => accounts::store::find_by_id(&self.db, parent.user_id).await?,
        };
        let user = self.usable(user, &parent, now).await?;
        let tokens = self
            .sign_set(
                &user,
                client,
                &scope,
                parent.auth_time,
                now,
                child_value,
                parent.family_id,
            )
            .await?;
        metrics::counter!("gatehouse_tokens_issued_total", "grant" => "refresh_token").increment(1);
        Ok(tokens)
    }

    /// Rotates the live token `id` into `child` in one short transaction: the
    /// conditional `UPDATE … RETURNING` first (so that SQLite takes its write
    /// lock at once and PostgreSQL locks the row: of concurrent rotations
    /// exactly one wins), then the child's `INSERT`. `None` when the token did
    /// not rotate; an `asked` scope beyond the grant rolls the rotation back.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; the token, its client, the child and the two instants are distinct"
    )]
    async fn rotate(
        &self,
        id: Uuid,
        token_hash: &str,
        client: &Client,
        child: store::NewChild<'_>,
        asked: Option<&Scope>,
        now: DateTime<Utc>,
        born_after: DateTime<Utc>,
    ) -> Result<Option<refresh_tokens::Model>> {
        let _turn = self.writes.enter().await;
        let txn = self.db.begin().await?;
        let Some(parent) =
            store::rotate(&txn, id, token_hash, &client.id, child.id, now, born_after).await?
        else {
            txn.rollback().await?;
            return Ok(None);
        };
        // An error from here on drops `txn`: the rotation rolls back.
        narrowed(&parent.scope, asked)?;
        let row = refresh_tokens::Model {
            id: child.id,
            token_hash: child.token_hash.to_owned(),
            family_id: parent.family_id,
            parent_id: Some(parent.id),
            replaced_by: None,
            user_id: parent.user_id,
            client_id: parent.client_id.clone(),
            scope: parent.scope.clone(),
            auth_time: parent.auth_time,
            created_at: now,
            expires_at: child.expires_at,
            rotated_at: None,
            revoked_at: None,
        };
        store::insert(&txn, row).await?;
        txn.commit().await?;
        Ok(Some(parent))
    }

    /// The token's user if it may still hold tokens; else the family is
    /// revoked and the grant refused.
    async fn usable(
        &self,
        user: Option<users::Model>,
        token: &refresh_tokens::Model,
        now: DateTime<Utc>,
    ) -> Result<users::Model> {
        match user {
            Some(u) if u.activated && !u.disabled => Ok(u),
            _ => {
                store::revoke_family(&self.db, token.family_id, now).await?;
                Err(Error::InvalidGrant("the account is disabled".into()))
            }
        }
    }

    /// A token that did not rotate: unknown, another client's, expired,
    /// revoked, or already rotated. Within the grace window of its rotation
    /// the caller gets its child again (the token and the child's value);
    /// after it, this is reuse and the family is revoked.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; the token as presented, its parsed parts, and the window"
    )]
    async fn replayed(
        &self,
        client: &Client,
        id: Uuid,
        presented: &str,
        token_hash: &str,
        now: DateTime<Utc>,
        born_after: DateTime<Utc>,
        grace: std::time::Duration,
    ) -> Result<(refresh_tokens::Model, String)> {
        // Another client's token is not this client's to replay.
        let row = store::find(&self.db, id)
            .await?
            .filter(|r| r.client_id == client.id && r.token_hash == token_hash)
            .ok_or_else(invalid_refresh)?;
        if row.revoked_at.is_some() || row.expires_at <= now || row.auth_time <= born_after {
            return Err(invalid_refresh());
        }
        let (Some(rotated_at), Some(child)) = (row.rotated_at, row.replaced_by) else {
            return Err(invalid_refresh());
        };
        if now - rotated_at <= chrono_duration(grace) {
            let child_row = store::find(&self.db, child)
                .await?
                .ok_or_else(invalid_refresh)?;
            // The grace answer is the child the rotation produced, while it
            // is still the family's live tip: not once the family was
            // revoked, and not once that child was rotated itself (then
            // this replay is a reuse, below).
            if child_row.revoked_at.is_some() {
                return Err(invalid_refresh());
            }
            if child_row.rotated_at.is_none() {
                return Ok((row, child_refresh_value(&self.server_key, presented, child)));
            }
        }
        let revoked = store::revoke_family(&self.db, row.family_id, now).await?;
        metrics::counter!("gatehouse_refresh_reuse_detected_total").increment(1);
        tracing::warn!(token.family = %row.family_id, user.id = %row.user_id, revoked, "refresh token reuse: family revoked");
        Err(Error::InvalidGrant(
            "the refresh token was already used; the session has been revoked".into(),
        ))
    }

    async fn store_refresh(
        &self,
        db: &impl sea_orm::ConnectionTrait,
        mut row: refresh_tokens::Model,
    ) -> Result<String> {
        let value = root_refresh_value(&self.server_key, row.id);
        row.token_hash = sha256_hex(value.as_bytes());
        store::insert(db, row).await?;
        Ok(value)
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; the parts of a token set are all distinct"
    )]
    async fn sign_set(
        &self,
        user: &users::Model,
        client: &Client,
        scope: &Scope,
        auth_time: DateTime<Utc>,
        now: DateTime<Utc>,
        refresh_token: String,
        family: Uuid,
    ) -> Result<TokenSet> {
        let settings = self.live.get();
        let access_ttl = settings.tokens.access_ttl;
        let key = self.keys.signing_key(now)?;
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
            roles: accounts::roles_of(user),
            sid: Some(family.to_string()),
        };
        let id_claims = scope.has("openid").then(|| IdClaims {
            iss: self.issuer.clone(),
            sub: user.id.to_string(),
            aud: client.id.clone(),
            exp: iat + settings.tokens.id_token_ttl.as_secs() as i64,
            iat,
            auth_time: auth_time.timestamp(),
            profile: ProfileClaims::of(user, scope),
        });
        let access_typ = client.access_token_typ.as_str();
        let (access_token, id_token) = self
            .signers
            .run(move || {
                let mut header = Header::new(Algorithm::RS256);
                header.kid = Some(key.kid.clone());
                let id_token = id_claims
                    .map(|c| jsonwebtoken::encode(&header, &c, &key.encoding))
                    .transpose()
                    .map_err(Error::internal)?;
                header.typ = Some(access_typ.into());
                let access_token = jsonwebtoken::encode(&header, &claims, &key.encoding)
                    .map_err(Error::internal)?;
                Ok((access_token, id_token))
            })
            .await?;
        Ok(TokenSet {
            access_token,
            expires_in: access_ttl.as_secs(),
            refresh_token,
            scope: scope.to_string(),
            id_token,
        })
    }

    /// Checks a bearer access token: RS256 only, a published `kid`, `typ`
    /// `at+jwt`, our issuer, `exp`/`nbf` with a small leeway, and the deny list.
    pub async fn verify_access(&self, token: &str) -> Result<AccessClaims> {
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
        let jti = Uuid::parse_str(&claims.jti)
            .map_err(|_| Error::InvalidBearer("malformed token".into()))?;
        if self.deny.is_denied(jti).await? {
            return Err(Error::InvalidBearer("the access token was revoked".into()));
        }
        Ok(claims)
    }

    /// Signature, algorithm, `kid`, `typ` and issuer; not time or revocation.
    fn verify_signature(&self, token: &str) -> Result<AccessClaims> {
        verify_jwt(token, &self.issuer, |kid| self.keys.decoding_key(kid))
    }

    /// RFC 7009: revokes a refresh token (its whole family) or an access
    /// token (its `jti`, until it expires). Unknown tokens are not an error.
    pub async fn revoke(
        &self,
        client: &Client,
        token: &str,
        hint: Option<&str>,
        ip: IpAddr,
    ) -> Result<()> {
        self.limits
            .check(LimitKind::UnauthenticatedPerIp, &ip.to_string())
            .await?;
        let now = self.clock.now();
        let access_first = hint == Some("access_token") || token.matches('.').count() == 2;
        if !access_first && self.revoke_refresh(client, token, now).await? {
            return Ok(());
        }
        if let Ok(claims) = self.verify_signature(token) {
            // RFC 7009 §2.1: a client revokes only tokens issued to it;
            // another's is answered 200 and left alone.
            if claims.client_id != client.id {
                return Ok(());
            }
            // Denied for as long as `verify_access` could accept it.
            let until = claims.exp.saturating_add(LEEWAY_SECS);
            if let Ok(jti) = Uuid::parse_str(&claims.jti)
                && until > now.timestamp()
            {
                let until = DateTime::from_timestamp(until, 0).unwrap_or(now);
                self.deny.deny(jti, until).await?;
                tracing::info!(user.id = %claims.sub, "access token revoked");
            }
            return Ok(());
        }
        if access_first {
            self.revoke_refresh(client, token, now).await?;
        }
        Ok(())
    }

    async fn revoke_refresh(
        &self,
        client: &Client,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let Some(id) = parse_refresh(&self.server_key, token) else {
            return Ok(false);
        };
        let Some(row) = store::find(&self.db, id).await? else {
            return Ok(false);
        };
        if row.client_id != client.id {
            // RFC 7009 §2.1: a client may revoke only its own tokens; a
            // public client that holds another's cannot end that session.
            return Ok(true);
        }
        store::revoke_family(&self.db, row.family_id, now).await?;
        tracing::info!(user.id = %row.user_id, "refresh token family revoked");
        Ok(true)
    }

    /// RFC 7662: what a resource server may know about `token`.
    pub async fn introspect(&self, token: &str, ip: IpAddr) -> Result<Introspection> {
        self.limits
            .check(LimitKind::UnauthenticatedPerIp, &ip.to_string())
            .await?;
        if let Ok(claims) = self.verify_access(token).await {
            let user = match Uuid::parse_str(&claims.sub) {
                Ok(id) => accounts::store::find_by_id(&self.db, id).await?,
                Err(_) => None,
            };
            let Some(user) = user.filter(|u| u.activated && !u.disabled) else {
                return Ok(Introspection::default());
            };
            return Ok(Introspection {
                active: true,
                sub: Some(claims.sub),
                client_id: Some(claims.client_id),
                scope: Some(claims.scope),
                exp: Some(claims.exp),
                iat: Some(claims.iat),
                jti: Some(claims.jti),
                // RFC 7662 §2.2: the token type of RFC 6749 §5.1.
                token_type: Some("Bearer".into()),
                username: Some(user.username.unwrap_or(user.email)),
                iss: Some(claims.iss),
                aud: Some(claims.aud),
            });
        }
        let now = self.clock.now();
        if let Some(id) = parse_refresh(&self.server_key, token)
            && let Some(row) = store::find(&self.db, id).await?
            && row.revoked_at.is_none()
            && row.rotated_at.is_none()
            && row.expires_at > now
            && row.auth_time > now - chrono_duration(self.live.get().tokens.session_max_lifetime)
            && let Some(user) = accounts::store::find_by_id(&self.db, row.user_id).await?
            && user.activated
            && !user.disabled
        {
            return Ok(Introspection {
                active: true,
                sub: Some(row.user_id.to_string()),
                client_id: Some(row.client_id),
                scope: Some(row.scope),
                exp: Some(row.expires_at.timestamp()),
                iat: Some(row.created_at.timestamp()),
                jti: Some(row.id.to_string()),
                token_type: Some("refresh_token".into()),
                username: Some(user.username.unwrap_or(user.email)),
                iss: Some(self.issuer.clone()),
                aud: None,
            });
        }
        Ok(Introspection::default())
    }

    /// Deletes expired refresh tokens and deny-list rows.
    pub async fn sweep(&self) -> Result<u64> {
        let now = self.clock.now();
        let tokens = store::delete_expired(&self.db, now).await?;
        let denials = self.deny.sweep(now).await?;
        Ok(tokens + denials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
            prop_assert!(verify_jwt(&token, "https://iss", |_| Some(dk.clone())).is_err());
        }

        #[test]
        fn arbitrary_headers_and_kids_are_refused_unless_ours(kid in ".{0,40}", typ in "[a-z+/]{0,20}") {
            let (_, dk) = test_key();
            let mut h = Header::new(Algorithm::RS256);
            h.kid = Some(kid.clone());
            h.typ = Some(typ.clone());
            let t = sign(&h, &serde_json::json!({"iss": "https://iss", "sub": "u", "exp": 1, "iat": 0, "nbf": 0, "jti": "j", "aud": "a", "client_id": "c", "scope": ""}));
            let known = |k: &str| (k == "ours").then(|| dk.clone());
            let ok = verify_jwt(&t, "https://iss", known).is_ok();
            prop_assert_eq!(ok, kid == "ours" && (typ == "at+jwt" || typ == "application/at+jwt" || typ == "jwt"));
        }

        #[test]
        fn arbitrary_refresh_tokens_are_refused(value in ".{0,120}") {
            prop_assert!(parse_refresh(&ServerKey::from_bytes([3; 32]), &value).is_none());
        }
    }

    #[test]
    fn refresh_values_carry_their_id_256_bits_and_refuse_forgery() {
        let key = ServerKey::from_bytes([1; 32]);
        let id = Uuid::new_v4();
        let v = root_refresh_value(&key, id);
        assert_eq!(v.len(), 86, "64 bytes: id, 256-bit secret, tag");
        assert_eq!(parse_refresh(&key, &v), Some(id));
        assert_ne!(v, root_refresh_value(&key, id), "the secret is random");
        assert_eq!(parse_refresh(&ServerKey::from_bytes([2; 32]), &v), None);
        let mut tampered = v.clone().into_bytes();
        tampered[40] = if tampered[40] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            parse_refresh(&key, &String::from_utf8(tampered).expect("ascii")),
            None
        );
        assert_eq!(parse_refresh(&key, "not a token"), None);
        // A child is derived from its parent's value: the same again for the
        // grace window, different for another parent.
        let child = Uuid::new_v4();
        let c = child_refresh_value(&key, &v, child);
        assert_eq!(c, child_refresh_value(&key, &v, child));
        assert_ne!(
            c,
            child_refresh_value(&key, &root_refresh_value(&key, id), child)
        );
        assert_eq!(parse_refresh(&key, &c), Some(child));
        // Tokens of the first form are still read.
        let mut old = id.as_bytes().to_vec();
        old.extend_from_slice(&key.mac(&[b"refresh", id.as_bytes()]));
        assert_eq!(parse_refresh(&key, &URL_SAFE_NO_PAD.encode(old)), Some(id));
    }
}
