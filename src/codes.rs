//! Single-use secrets sent by mail: 6-digit activation codes and
//! password-reset tokens. Only keyed hashes (HMAC under the server key) are
//! stored, so a database dump reveals none of them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::{Rng, RngCore};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::entity::one_time_codes::{self, ActiveModel, Column, Entity};
use crate::secrets::ServerKey;

/// What a code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Proves the email after registration.
    Activation,
    /// Lets the user set a new password.
    Reset,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Activation => "activation",
            Kind::Reset => "reset",
        }
    }
}

/// Keyed hash of an activation code: bound to the user, since 6 digits alone
/// collide across users.
fn activation_hash(key: &ServerKey, user: Uuid, code: &str) -> String {
    key.mac_hex(&[b"activation", user.as_bytes(), code.as_bytes()])
}

fn reset_hash(key: &ServerKey, token: &str) -> String {
    key.mac_hex(&[b"reset", token.as_bytes()])
}

/// Replaces any earlier code of `kind` for `user` with a new one and returns
/// the new secret (6 digits for activation, 256 random bits for reset).
pub async fn issue(
    db: &impl ConnectionTrait,
    key: &ServerKey,
    kind: Kind,
    user: Uuid,
    now: DateTime<Utc>,
    ttl: chrono::Duration,
) -> Result<String, DbErr> {
    let (secret, hash) = match kind {
        Kind::Activation => {
            let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000));
            let h = activation_hash(key, user, &code);
            (code, h)
        }
        Kind::Reset => {
            let mut raw = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut raw);
            let token = URL_SAFE_NO_PAD.encode(raw);
            let h = reset_hash(key, &token);
            (token, h)
        }
    };
    let row = ActiveModel {
        id: Set(Uuid::new_v4()),
        kind: Set(kind.as_str().into()),
        user_id: Set(user),
        code_hash: Set(hash),
        created_at: Set(now),
        expires_at: Set(now + ttl),
        attempts: Set(0),
        used_at: Set(None),
    };
    // One statement replaces the user's code of this kind (unique index on
    // user and kind): concurrent issues leave exactly one live code.
    Entity::insert(row)
        .on_conflict(
            OnConflict::columns([Column::UserId, Column::Kind])
                .update_columns([
                    Column::Id,
                    Column::CodeHash,
                    Column::CreatedAt,
                    Column::ExpiresAt,
                    Column::Attempts,
                    Column::UsedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(secret)
}

/// Wrong tries after which an activation code dies (a new one must be
/// sent): with 10^6 codes, five tries guess one with odds of 1 in 200,000.
pub const MAX_ACTIVATION_ATTEMPTS: i32 = 5;

/// Spends `user`'s activation `code` if it is right, live and has not had
/// [`MAX_ACTIVATION_ATTEMPTS`] wrong tries; `true` then. A wrong code counts
/// a try against the user's live code.
pub async fn spend_activation(
    db: &impl ConnectionTrait,
    key: &ServerKey,
    user: Uuid,
    code: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let hash = activation_hash(key, user, code);
    let res = Entity::update_many()
        .col_expr(Column::UsedAt, Expr::value(now))
        .filter(Column::UserId.eq(user))
        .filter(Column::Kind.eq(Kind::Activation.as_str()))
        .filter(Column::CodeHash.eq(hash))
        .filter(Column::UsedAt.is_null())
        .filter(Column::ExpiresAt.gt(now))
        .filter(Column::Attempts.lt(MAX_ACTIVATION_ATTEMPTS))
        .exec(db)
        .await?;
    if res.rows_affected == 1 {
        return Ok(true);
    }
    Entity::update_many()
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).add(1))
        .filter(Column::UserId.eq(user))
        .filter(Column::Kind.eq(Kind::Activation.as_str()))
        .filter(Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(false)
}

/// The user a live reset token belongs to, without spending it.
pub async fn peek_reset(
    db: &impl ConnectionTrait,
    key: &ServerKey,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, DbErr> {
    let row = live(db, Kind::Reset, &reset_hash(key, token), now).await?;
    Ok(row.map(|r| r.user_id))
}

/// Discards every code of `kind` of `user` (a password change kills the
/// reset links already mailed).
pub async fn discard(db: &impl ConnectionTrait, user: Uuid, kind: Kind) -> Result<u64, DbErr> {
    Ok(Entity::delete_many()
        .filter(Column::UserId.eq(user))
        .filter(Column::Kind.eq(kind.as_str()))
        .exec(db)
        .await?
        .rows_affected)
}

/// Spends a reset token; the user it belonged to when it was live.
pub async fn spend_reset(
    db: &impl ConnectionTrait,
    key: &ServerKey,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, DbErr> {
    spend(db, Kind::Reset, &reset_hash(key, token), now).await
}

async fn live(
    db: &impl ConnectionTrait,
    kind: Kind,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<one_time_codes::Model>, DbErr> {
    Entity::find()
        .filter(Column::CodeHash.eq(hash))
        .filter(Column::Kind.eq(kind.as_str()))
        .filter(Column::UsedAt.is_null())
        .filter(Column::ExpiresAt.gt(now))
        .one(db)
        .await
}

/// Marks the code used if it is live; one concurrent caller wins.
async fn spend(
    db: &impl ConnectionTrait,
    kind: Kind,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, DbErr> {
    let Some(row) = live(db, kind, hash, now).await? else {
        return Ok(None);
    };
    let res = Entity::update_many()
        .col_expr(Column::UsedAt, Expr::value(now))
        .filter(Column::Id.eq(row.id))
        .filter(Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok((res.rows_affected == 1).then_some(row.user_id))
}

/// Deletes codes that expired or were spent before `before`.
pub async fn sweep(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, DbErr> {
    Entity::delete_many()
        .filter(Column::ExpiresAt.lt(before))
        .exec(db)
        .await
        .map(|r| r.rows_affected)
}
