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
