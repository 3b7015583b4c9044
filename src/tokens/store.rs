//! Queries on `refresh_tokens` and `revoked_access_tokens`.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter,
};
use uuid::Uuid;

use crate::entity::refresh_tokens::{self, Column, Entity};
use crate::entity::revoked_access_tokens;

/// Stores a new refresh token.
pub async fn insert(db: &impl ConnectionTrait, row: refresh_tokens::Model) -> Result<(), DbErr> {
    Entity::insert(row.into_active_model())
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

/// One token by id.
pub async fn find(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<refresh_tokens::Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

/// Marks `id` rotated into `child` if it is still live; `true` when this call
/// won. The condition makes concurrent rotations of one token yield one child.
pub async fn try_rotate(
    db: &impl ConnectionTrait,
    id: Uuid,
    child: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = Entity::update_many()
        .col_expr(Column::RotatedAt, Expr::value(now))
        .col_expr(Column::ReplacedBy, Expr::value(child))
        .filter(Column::Id.eq(id))
        .filter(Column::RotatedAt.is_null())
        .filter(Column::RevokedAt.is_null())
        .filter(Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Revokes every live token of a family.
pub async fn revoke_family(
    db: &impl ConnectionTrait,
    family: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Entity::update_many()
        .col_expr(Column::RevokedAt, Expr::value(now))
        .filter(Column::FamilyId.eq(family))
        .filter(Column::RevokedAt.is_null())
        .exec(db)
        .await
        .map(|r| r.rows_affected)
}

/// Revokes every live token of a user, except those of `keep_family`.
pub async fn revoke_user(
    db: &impl ConnectionTrait,
    user: Uuid,
    keep_family: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut q = Entity::update_many()
        .col_expr(Column::RevokedAt, Expr::value(now))
        .filter(Column::UserId.eq(user))
        .filter(Column::RevokedAt.is_null());
    if let Some(f) = keep_family {
        q = q.filter(Column::FamilyId.ne(f));
    }
    q.exec(db).await.map(|r| r.rows_affected)
}

/// Deletes tokens that expired before `before`.
pub async fn delete_expired(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Entity::delete_many()
        .filter(Column::ExpiresAt.lt(before))
        .exec(db)
        .await
        .map(|r| r.rows_affected)
}

/// Adds `jti` to the durable deny list.
pub async fn deny(
    db: &impl ConnectionTrait,
    jti: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = revoked_access_tokens::ActiveModel {
        jti: Set(jti),
        expires_at: Set(expires_at),
    };
    revoked_access_tokens::Entity::insert(row)
        .on_conflict(
            OnConflict::column(revoked_access_tokens::Column::Jti)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

/// Whether `jti` is on the durable deny list.
pub async fn is_denied(db: &impl ConnectionTrait, jti: Uuid) -> Result<bool, DbErr> {
    revoked_access_tokens::Entity::find_by_id(jti)
        .one(db)
        .await
        .map(|r| r.is_some())
}

/// Every deny-list entry still live at `now`.
pub async fn live_denials(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Vec<revoked_access_tokens::Model>, DbErr> {
    revoked_access_tokens::Entity::find()
        .filter(revoked_access_tokens::Column::ExpiresAt.gt(now))
        .all(db)
        .await
}

/// Deletes deny-list entries for tokens that have expired anyway.
pub async fn delete_expired_denials(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<u64, DbErr> {
    revoked_access_tokens::Entity::delete_many()
        .filter(revoked_access_tokens::Column::ExpiresAt.lt(before))
        .exec(db)
        .await
        .map(|r| r.rows_affected)
}
