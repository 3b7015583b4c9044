//! Queries on `users`.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, SqlErr,
};
use uuid::Uuid;

use crate::entity::users::{self, Column, Entity};
use crate::error::Error;

/// Inserts a user; a taken email or username becomes the domain error
/// named after the violated unique constraint.
pub async fn insert(db: &impl ConnectionTrait, user: users::Model) -> Result<(), Error> {
    match Entity::insert(user.into_active_model())
        .exec_without_returning(db)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(msg)) if msg.contains("username") => {
                Err(Error::field("username", "is already taken"))
            }
            Some(SqlErr::UniqueConstraintViolation(_)) => Err(Error::EmailTaken),
            _ => Err(e.into()),
        },
    }
}

/// A user by id.
pub async fn find_by_id(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<users::Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

/// A user by email (case-insensitive).
pub async fn find_by_email(
    db: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<users::Model>, DbErr> {
    Entity::find()
        .filter(Column::EmailNormalized.eq(email.trim().to_lowercase()))
        .one(db)
        .await
}

/// A user by email or username (case-insensitive).
pub async fn find_by_login(
    db: &impl ConnectionTrait,
    login: &str,
) -> Result<Option<users::Model>, DbErr> {
    let login = login.trim().to_lowercase();
    let column = if login.contains('@') {
        Column::EmailNormalized
    } else {
        Column::UsernameNormalized
    };
    Entity::find().filter(column.eq(login)).one(db).await
}

/// Replaces a user's password hash.
pub async fn set_password_hash(
    db: &impl ConnectionTrait,
    id: Uuid,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::PasswordHash, Expr::value(hash))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Marks a user activated with a verified email.
pub async fn activate(
    db: &impl ConnectionTrait,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Activated, Expr::value(true))
        .col_expr(Column::EmailVerified, Expr::value(true))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Saves a changed user row (profile fields).
pub async fn update(db: &impl ConnectionTrait, user: users::Model) -> Result<users::Model, Error> {
    let mut active = user.into_active_model();
    for col in [
        Column::Username,
        Column::UsernameNormalized,
        Column::GivenName,
        Column::FamilyName,
        Column::PhoneNumber,
        Column::UpdatedAt,
    ] {
        sea_orm::ActiveModelTrait::reset(&mut active, col);
    }
    match Entity::update(active).exec(db).await {
        Ok(u) => Ok(u),
        Err(e) => match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                Err(Error::field("username", "is already taken"))
            }
            _ => Err(e.into()),
        },
    }
}
