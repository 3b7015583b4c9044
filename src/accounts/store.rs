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

/// A password hash no password matches: the mark of a contested
/// registration, whose password the mailbox owner chooses after activation.
pub const NO_PASSWORD: &str = "!contested";

/// Registration again for an address whose account was never activated:
/// the registration is contested. Whoever registered first may be a
/// squatter (holding the address from its owner) and whoever registers now
/// may be an attacker (setting the password of the owner's pending account),
/// so neither password counts: the account keeps its row, its address
/// becomes the canonical spelling (so the code reaches the address's owner,
/// not a look-alike), and once activated its owner chooses a password
/// through a link mailed there. `None` when the address belongs to an
/// activated account.
pub async fn contest_unactivated(
    db: &impl ConnectionTrait,
    canonical_email: &str,
    now: DateTime<Utc>,
) -> Result<Option<users::Model>, Error> {
    let updated = Entity::update_many()
        .col_expr(Column::Email, Expr::value(canonical_email))
        .col_expr(Column::PasswordHash, Expr::value(NO_PASSWORD))
        .col_expr(Column::CreatedAt, Expr::value(now))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::EmailNormalized.eq(canonical_email))
        .filter(Column::Activated.eq(false))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(None);
    }
    Ok(Entity::find()
        .filter(Column::EmailNormalized.eq(canonical_email))
        .one(db)
        .await?)
}

/// Deletes accounts never activated and registered before `before`
/// (`accounts.unactivated_ttl`), with their codes.
pub async fn delete_unactivated(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(Entity::delete_many()
        .filter(Column::Activated.eq(false))
        .filter(Column::EmailVerified.eq(false))
        .filter(Column::CreatedAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
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
        .filter(Column::EmailNormalized.eq(super::fields::canonical(email)))
        .one(db)
        .await
}

/// A user by email or username (case-insensitive).
pub async fn find_by_login(
    db: &impl ConnectionTrait,
    login: &str,
) -> Result<Option<users::Model>, DbErr> {
    let login = super::fields::canonical(login);
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

/// Replaces the password hash only if it is still `old`: a login's rehash
/// (new parameters, same password) must not overwrite a password changed
/// meanwhile. Whether it was replaced.
pub async fn upgrade_password_hash(
    db: &impl ConnectionTrait,
    id: Uuid,
    old: &str,
    new: &str,
) -> Result<bool, DbErr> {
    Entity::update_many()
        .col_expr(Column::PasswordHash, Expr::value(new))
        .filter(Column::Id.eq(id))
        .filter(Column::PasswordHash.eq(old))
        .exec(db)
        .await
        .map(|r| r.rows_affected == 1)
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

/// Records a successful login of `user` from `source`.
pub async fn remember_source(
    db: &impl ConnectionTrait,
    user: Uuid,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    use crate::entity::login_sources;
    use sea_orm::sea_query::OnConflict;
    let row = login_sources::ActiveModel {
        user_id: sea_orm::ActiveValue::Set(user),
        source: sea_orm::ActiveValue::Set(source.to_owned()),
        last_success_at: sea_orm::ActiveValue::Set(now),
    };
    login_sources::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([login_sources::Column::UserId, login_sources::Column::Source])
                .update_column(login_sources::Column::LastSuccessAt)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

/// Whether `user` logged in successfully from `source` after `since`.
pub async fn is_known_source(
    db: &impl ConnectionTrait,
    user: Uuid,
    source: &str,
    since: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use crate::entity::login_sources;
    Ok(login_sources::Entity::find()
        .filter(login_sources::Column::UserId.eq(user))
        .filter(login_sources::Column::Source.eq(source))
        .filter(login_sources::Column::LastSuccessAt.gt(since))
        .one(db)
        .await?
        .is_some())
}

/// Forgets sources not used since `before`.
pub async fn forget_sources(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<u64, DbErr> {
    use crate::entity::login_sources;
    Ok(login_sources::Entity::delete_many()
        .filter(login_sources::Column::LastSuccessAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}
