//! `users`: one row per account.

use sea_orm::entity::prelude::*;

/// An account.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// Subject identifier (`sub`).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The email as the user typed it.
    pub email: String,
    /// Lowercased email; unique.
    #[sea_orm(unique)]
    pub email_normalized: String,
    /// Optional login name.
    pub username: Option<String>,
    /// Lowercased username; unique.
    #[sea_orm(unique)]
    pub username_normalized: Option<String>,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// OIDC `given_name`.
    pub given_name: Option<String>,
    /// OIDC `family_name`.
    pub family_name: Option<String>,
    /// OIDC `phone_number` (E.164).
    pub phone_number: Option<String>,
    /// The user proved the email address.
    pub email_verified: bool,
    /// The account was activated.
    pub activated: bool,
    /// An administrator disabled the account.
    pub disabled: bool,
    /// Space-separated role names.
    pub roles: String,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last profile change.
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The account's roles, e.g. `["admin"]`.
    pub fn role_list(&self) -> Vec<String> {
        self.roles.split_whitespace().map(str::to_owned).collect()
    }
}

/// The columns [`Model::from_sqlite_row`] reads, in its order (the
/// entity's order, checked by a test).
pub const SQLITE_COLUMNS: [&str; 15] = [
    "id",
    "email",
    "email_normalized",
    "username",
    "username_normalized",
    "password_hash",
    "given_name",
    "family_name",
    "phone_number",
    "email_verified",
    "activated",
    "disabled",
    "roles",
    "created_at",
    "updated_at",
];

impl Model {
    /// The account in [`SQLITE_COLUMNS`] from column `first` of a row read
    /// by the inline SQLite driver ([`crate::db::inline`]).
    pub fn from_sqlite_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Self> {
        use crate::db::inline::{time, uuid};
        let i = |n: usize| first + n;
        Ok(Self {
            id: uuid(row, i(0))?,
            email: row.get(i(1))?,
            email_normalized: row.get(i(2))?,
            username: row.get(i(3))?,
            username_normalized: row.get(i(4))?,
            password_hash: row.get(i(5))?,
            given_name: row.get(i(6))?,
            family_name: row.get(i(7))?,
            phone_number: row.get(i(8))?,
            email_verified: row.get(i(9))?,
            activated: row.get(i(10))?,
            disabled: row.get(i(11))?,
            roles: row.get(i(12))?,
            created_at: time(row, i(13))?,
            updated_at: time(row, i(14))?,
        })
    }
}
