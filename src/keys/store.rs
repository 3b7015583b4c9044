//! Queries on `signing_keys`.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::entity::signing_keys::{self, ActiveModel, Column, Entity};

/// Every key, oldest generation first (per algorithm).
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<signing_keys::Model>, DbErr> {
    Entity::find()
        .order_by_asc(Column::Generation)
        .all(db)
        .await
}

/// The highest generation of `alg`, if any key of it exists.
pub async fn max_generation(db: &impl ConnectionTrait, alg: &str) -> Result<Option<i64>, DbErr> {
    Entity::find()
        .filter(Column::Alg.eq(alg))
        .select_only()
        .column_as(Column::Generation.max(), "max")
        .into_tuple::<Option<i64>>()
        .one(db)
        .await
        .map(Option::flatten)
}

/// Inserts `key` unless its algorithm's generation is taken; `true` when
/// it went in.
pub async fn insert_if_generation_free(
    db: &impl ConnectionTrait,
    key: signing_keys::Model,
) -> Result<bool, DbErr> {
    let model = ActiveModel {
        kid: Set(key.kid),
        alg: Set(key.alg),
        generation: Set(key.generation),
        private_key: Set(key.private_key),
        public_jwk: Set(key.public_jwk),
        created_at: Set(key.created_at),
        activates_at: Set(key.activates_at),
        retired_at: Set(key.retired_at),
        published_until: Set(key.published_until),
    };
    let rows = Entity::insert(model)
        .on_conflict(
            OnConflict::columns([Column::Alg, Column::Generation])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(rows == 1)
}

/// Marks every key of `alg` older than `generation` still signing as
/// retired at `at`, published at least until `published_until`.
pub async fn retire_older(
    db: &impl ConnectionTrait,
    alg: &str,
    generation: i64,
    at: DateTime<Utc>,
    published_until: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::RetiredAt, Expr::value(at))
        .col_expr(Column::PublishedUntil, Expr::value(published_until))
        .filter(Column::Alg.eq(alg))
        .filter(Column::Generation.lt(generation))
        .filter(Column::RetiredAt.is_null())
        .exec(db)
        .await
        .map(|_| ())
}

/// Replaces a key's stored private key if it is still `old`; rows changed.
pub async fn replace_private_key(
    db: &impl ConnectionTrait,
    kid: &str,
    old: &str,
    new: &str,
) -> Result<u64, DbErr> {
    signing_keys::Entity::update_many()
        .col_expr(
            signing_keys::Column::PrivateKey,
            sea_orm::sea_query::Expr::value(new),
        )
        .filter(signing_keys::Column::Kid.eq(kid))
        .filter(signing_keys::Column::PrivateKey.eq(old))
        .exec(db)
        .await
        .map(|r| r.rows_affected)
}
