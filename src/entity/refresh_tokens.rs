//! `refresh_tokens`: one row per issued refresh token, linked into families.

use sea_orm::entity::prelude::*;

/// A refresh token (only its hash is stored).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    /// Token id; the token value is derived from it and the server secret.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// SHA-256 of the token value, hex.
    #[sea_orm(unique)]
    pub token_hash: String,
    /// The login this token descends from; revoked as a whole on reuse.
    pub family_id: Uuid,
    /// The token this one replaced.
    pub parent_id: Option<Uuid>,
    /// The token that replaced this one.
    pub replaced_by: Option<Uuid>,
    /// Owner.
    pub user_id: Uuid,
    /// Client it was issued to.
    pub client_id: String,
    /// Granted scope.
    pub scope: String,
    /// When the user authenticated with a password (ID token `auth_time`).
    pub auth_time: DateTimeUtc,
    /// Issue time.
    pub created_at: DateTimeUtc,
    /// Expiry.
    pub expires_at: DateTimeUtc,
    /// When it was exchanged for its child.
    pub rotated_at: Option<DateTimeUtc>,
    /// When it was revoked (logout, reuse, password change).
    pub revoked_at: Option<DateTimeUtc>,
    /// The browser login session the family started from (authorization
    /// code flow); logout revokes its families.
    pub login_session_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// The columns [`Model::from_sqlite_row`] reads, in its order (the
/// entity's order, checked by a test).
pub const SQLITE_COLUMNS: [&str; 14] = [
    "id",
    "token_hash",
    "family_id",
    "parent_id",
    "replaced_by",
    "user_id",
    "client_id",
    "scope",
    "auth_time",
    "created_at",
    "expires_at",
    "rotated_at",
    "revoked_at",
    "login_session_id",
];

impl Model {
    /// The token in [`SQLITE_COLUMNS`] from column `first` of a row read by
    /// the inline SQLite driver ([`crate::db::inline`]).
    pub fn from_sqlite_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Self> {
        use crate::db::inline::{opt_time, opt_uuid, time, uuid};
        let i = |n: usize| first + n;
        Ok(Self {
            id: uuid(row, i(0))?,
            token_hash: row.get(i(1))?,
            family_id: uuid(row, i(2))?,
            parent_id: opt_uuid(row, i(3))?,
            replaced_by: opt_uuid(row, i(4))?,
            user_id: uuid(row, i(5))?,
            client_id: row.get(i(6))?,
            scope: row.get(i(7))?,
            auth_time: time(row, i(8))?,
            created_at: time(row, i(9))?,
            expires_at: time(row, i(10))?,
            rotated_at: opt_time(row, i(11))?,
            revoked_at: opt_time(row, i(12))?,
            login_session_id: opt_uuid(row, i(13))?,
        })
    }
}
