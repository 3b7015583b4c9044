//! Queries on `revoked_access_tokens`, the deny list.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::entity::revoked_access_tokens;

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
