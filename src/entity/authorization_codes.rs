//! `authorization_codes`: codes of the authorization code flow, by hash.

use sea_orm::entity::prelude::*;

/// One authorization code and what it is bound to.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "authorization_codes")]
pub struct Model {
    /// SHA-256 of the code, hex.
    #[sea_orm(primary_key, auto_increment = false)]
    pub code_hash: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI it was sent to (the token request must repeat it).
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// The OIDC `nonce`, for the ID token.
    pub nonce: Option<String>,
    /// The granted scope.
    pub scope: String,
    /// The user who logged in.
    pub user_id: Uuid,
    /// The login session it came from.
    pub login_session_id: Uuid,
    /// When the user authenticated.
    pub auth_time: DateTimeUtc,
    /// Expiry (at most 60 s after issue).
    pub expires_at: DateTimeUtc,
    /// When it was exchanged.
    pub used_at: Option<DateTimeUtc>,
    /// The refresh family its exchange started (revoked on a second use).
    pub family_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
