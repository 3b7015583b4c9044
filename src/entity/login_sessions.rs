//! `login_sessions`: a browser's login at the hosted pages.

use sea_orm::entity::prelude::*;

/// One login session (its cookie holds the id and a secret).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_sessions")]
pub struct Model {
    /// Session id (`sid` in tokens issued through it).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Who logged in.
    pub user_id: Uuid,
    /// SHA-256 of the cookie's secret, hex.
    pub secret_hash: String,
    /// When the password was checked (`auth_time`).
    pub auth_time: DateTimeUtc,
    /// When the session lapses.
    pub expires_at: DateTimeUtc,
    /// When it was ended by logout, if it was.
    pub ended_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
