//! `one_time_codes`: activation codes and password-reset tokens, hashed.

use sea_orm::entity::prelude::*;

/// A single-use secret sent by mail.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "one_time_codes")]
pub struct Model {
    /// Row id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `activation` or `reset`.
    pub kind: String,
    /// Whose code it is.
    pub user_id: Uuid,
    /// Keyed hash of the code, hex.
    #[sea_orm(unique)]
    pub code_hash: String,
    /// Issue time.
    pub created_at: DateTimeUtc,
    /// Expiry.
    pub expires_at: DateTimeUtc,
    /// Wrong tries so far.
    pub attempts: i32,
    /// When it was spent.
    pub used_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
