//! `server_secrets`: secrets all replicas share, made once.

use sea_orm::entity::prelude::*;

/// A named secret.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "server_secrets")]
pub struct Model {
    /// Name, e.g. `hmac`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// Base64 value (or `enc:v1:` ciphertext).
    pub value: String,
    /// Creation time.
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
