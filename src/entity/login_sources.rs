//! `login_sources`: where an account last logged in successfully.

use sea_orm::entity::prelude::*;

/// One (account, source) pair that has logged in.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_sources")]
pub struct Model {
    /// The account.
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// The client: an IPv4 address or an IPv6 network, as limits key it.
    #[sea_orm(primary_key, auto_increment = false)]
    pub source: String,
    /// The last successful login from it.
    pub last_success_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
