//! Sessions: refresh-token families. A family starts at a login and lives
//! through its rotations until it expires, passes
//! `tokens.session_max_lifetime`, or is revoked. This module owns the token
//! format ([`format`]), issuing, both rotation paths, the grace-window
//! replay, reuse detection and revocation, and the browser login sessions
//! families may start from ([`browser`]); the user and the signed tokens
//! are the caller's ([`crate::oauth`]).

mod browser;
pub mod format;
pub mod store;

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use crate::clock::{Clock, chrono_duration};
use crate::config::LiveSettings;
use crate::entity::{refresh_tokens, users};
use crate::error::{Error, Result};
use crate::scope::Scope;
use crate::secrets::{ServerKey, sha256_hex};
use format::{child_refresh_value, parse_refresh, root_refresh_value};

/// A new family's first token.
pub struct Started {
    /// The refresh token's value, for the client.
    pub refresh_token: String,
    /// The family (the `sid` of its access tokens).
    pub family: Uuid,
}

/// A refresh token exchanged for its child.
pub struct Rotated {
    /// The presented token's row.
    pub parent: refresh_tokens::Model,
    /// The child's value, for the client.
    pub refresh_token: String,
    /// The scope of the new token set.
    pub scope: Scope,
    /// The user, when the rotation read it in the same statement.
    pub user: Option<users::Model>,
}

/// The session service.
#[derive(Clone)]
pub struct Sessions {
    db: DatabaseConnection,
    live: LiveSettings,
    clock: Clock,
    server_key: ServerKey,
    writes: crate::db::WriteGate,
    inline: crate::db::Inline,
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

impl Sessions {
    /// Builds the service.
    pub fn new(
        db: DatabaseConnection,
        inline: crate::db::Inline,
        live: LiveSettings,
        clock: Clock,
        server_key: ServerKey,
    ) -> Self {
        Self {
            writes: crate::db::WriteGate::for_db(&db),
            inline,
            db,
            live,
            clock,
            server_key,
        }
    }

    /// Starts a new family for `user` and `client_id` at a login made at
    /// `auth_time`, tied to the browser login session `login_session` when
    /// there is one.
    pub async fn start(
        &self,
        user: Uuid,
        client_id: &str,
        scope: &Scope,
        auth_time: DateTime<Utc>,
        login_session: Option<Uuid>,
    ) -> Result<Started> {
        let now = self.clock.now();
        let settings = self.live.get();
        let id = Uuid::new_v4();
        let refresh_token = root_refresh_value(&self.server_key, id);
        let row = refresh_tokens::Model {
            id,
            token_hash: sha256_hex(refresh_token.as_bytes()),
            family_id: id,
            parent_id: None,
            replaced_by: None,
            user_id: user,
            client_id: client_id.to_owned(),
            scope: scope.to_string(),
            auth_time,
            created_at: now,
            expires_at: now + chrono_duration(settings.tokens.refresh_ttl),
            rotated_at: None,
            revoked_at: None,
            login_session_id: login_session,
        };
        {
            let _turn = self.writes.enter().await;
            store::insert(&self.db, row).await?;
        }
        Ok(Started {
            refresh_token,
            family: id,
        })
    }

    /// RFC 6749 §6: rotates `presented` into a child for `client_id`.
    ///
    /// Presenting a token that was already rotated is reuse (RFC 9700
    /// §4.14.2): the whole family is revoked, unless it comes within
    /// `tokens.refresh_reuse_grace` of the rotation, when the caller gets the
    /// same child again (two browser tabs refreshing at once).
    ///
    /// Without a narrowed scope, a live token rotates in one round trip that
    /// also reads the user ([`store::rotate_with_user`]); with one, in a short
    /// transaction that checks the scope before it commits
    /// ([`Self::rotate_live`]).
    pub async fn rotate(
        &self,
        client_id: &str,
        presented: &str,
        scope: Option<&str>,
    ) -> Result<Rotated> {
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
        let rotated = if asked.is_none() {
            // One round trip (a narrowed scope must be checked before the
            // rotation commits, so it takes the general path).
            let _turn = self.writes.enter().await;
            let rotation = store::Rotation {
                id,
                token_hash: &token_hash,
                client_id,
                child,
                now,
                born_after,
            };
            store::rotate_with_user(&self.db, &self.inline, rotation)
                .await?
                .map(|(parent, user)| (parent, Some(user)))
        } else {
            self.rotate_live(
                id,
                &token_hash,
                client_id,
                child,
                asked.as_ref(),
                now,
                born_after,
            )
            .await?
            .map(|parent| (parent, None))
        };
        let (parent, refresh_token, user) = match rotated {
            Some((parent, user)) => (parent, child_value, user),
            None => {
                let grace = settings.tokens.refresh_reuse_grace;
                let (parent, child_value) = self
                    .replayed(
                        client_id,
                        id,
                        presented,
                        &token_hash,
                        now,
                        born_after,
                        grace,
                    )
                    .await?;
                (parent, child_value, None)
            }
        };
        let scope = narrowed(&parent.scope, asked.as_ref())?;
        Ok(Rotated {
            parent,
            refresh_token,
            scope,
            user,
        })
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
    async fn rotate_live(
        &self,
        id: Uuid,
        token_hash: &str,
        client_id: &str,
        child: store::NewChild<'_>,
        asked: Option<&Scope>,
        now: DateTime<Utc>,
        born_after: DateTime<Utc>,
    ) -> Result<Option<refresh_tokens::Model>> {
        let _turn = self.writes.enter().await;
        let txn = self.db.begin().await?;
        let Some(parent) =
            store::rotate(&txn, id, token_hash, client_id, child.id, now, born_after).await?
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
            login_session_id: parent.login_session_id,
        };
        store::insert(&txn, row).await?;
        txn.commit().await?;
        Ok(Some(parent))
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
        client_id: &str,
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
            .filter(|r| r.client_id == client_id && r.token_hash == token_hash)
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

    /// Revokes every token of `family`.
    pub async fn revoke_family(&self, family: Uuid) -> Result<u64> {
        Ok(store::revoke_family(&self.db, family, self.clock.now()).await?)
    }

    /// Revokes every family started from the browser login session
    /// `login_session`.
    pub async fn revoke_login_session(&self, login_session: Uuid) -> Result<u64> {
        Ok(store::revoke_login_session(&self.db, login_session, self.clock.now()).await?)
    }

    /// RFC 7009 for a refresh token: revokes its family if it is
    /// `client_id`'s. `false` when `token` is not a refresh token we know.
    pub async fn revoke(&self, client_id: &str, token: &str) -> Result<bool> {
        let Some(id) = parse_refresh(&self.server_key, token) else {
            return Ok(false);
        };
        let Some(row) = store::find(&self.db, id).await? else {
            return Ok(false);
        };
        if row.client_id != client_id {
            // RFC 7009 §2.1: a client may revoke only its own tokens; a
            // public client that holds another's cannot end that session.
            return Ok(true);
        }
        store::revoke_family(&self.db, row.family_id, self.clock.now()).await?;
        tracing::info!(user.id = %row.user_id, "refresh token family revoked");
        Ok(true)
    }

    /// The row of `token` if it is a refresh token that would rotate now.
    pub async fn live(&self, token: &str) -> Result<Option<refresh_tokens::Model>> {
        let Some(id) = parse_refresh(&self.server_key, token) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let max = chrono_duration(self.live.get().tokens.session_max_lifetime);
        Ok(store::find(&self.db, id).await?.filter(|row| {
            row.revoked_at.is_none()
                && row.rotated_at.is_none()
                && row.expires_at > now
                && row.auth_time > now - max
        }))
    }

    /// Deletes expired refresh tokens and lapsed login sessions.
    pub async fn sweep(&self) -> Result<u64> {
        let logins = self.sweep_login_sessions().await?;
        Ok(store::delete_expired(&self.db, self.clock.now()).await? + logins)
    }
}
