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
