//! `signing_keys`: per algorithm, the newest generation signs once it is active.

use sea_orm::entity::prelude::*;

/// One signing key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    /// Key id (RFC 7638 thumbprint).
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    /// Monotonic per `alg`; unique with it, so concurrent first starts make
    /// one key.
    pub generation: i64,
    /// PKCS#8 PEM, or `enc:v1:`-prefixed ciphertext when encrypted at rest.
    pub private_key: String,
    /// The public JWK, JSON.
    pub public_jwk: String,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// From when it signs (it is published before).
    pub activates_at: DateTimeUtc,
    /// When a newer key took over signing.
    pub retired_at: Option<DateTimeUtc>,
    /// Published at least until then (retirement plus the token lifetime in
    /// force at retirement); `None` for keys retired before this existed.
    pub published_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
