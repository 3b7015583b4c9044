//! The server-wide HMAC key every replica shares: refresh tokens are derived
//! from it (so a just-rotated token's child can be handed out again inside
//! the grace window without storing it in clear), and codes are hashed with it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use sha2::Sha256;

use crate::entity::server_secrets::{ActiveModel, Column, Entity};
use crate::error::{Error, Result};
use crate::sealing::Sealer;

const NAME: &str = "hmac";

/// A keyed MAC (HMAC-SHA256) under the shared server secret.
#[derive(Clone)]
pub struct ServerKey {
    key: std::sync::Arc<[u8; 32]>,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(***)")
    }
}

impl ServerKey {
    /// Reads the secret, creating it if this is the first process to start.
    pub async fn open(
        db: &DatabaseConnection,
        sealer: &Sealer,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Self> {
        // Read first: a read-only database must still start.
        let stored = match Entity::find_by_id(NAME.to_owned()).one(db).await? {
            Some(row) => row,
            None => {
                let mut fresh = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut fresh);
                let row = ActiveModel {
                    name: Set(NAME.into()),
                    value: Set(sealer
                        .seal(&STANDARD.encode(fresh))
                        .map_err(Error::internal)?),
                    created_at: Set(now),
                };
                // Concurrent first starts: one insert wins, all read the winner.
                Entity::insert(row)
                    .on_conflict(OnConflict::column(Column::Name).do_nothing().to_owned())
                    .exec_without_returning(db)
                    .await?;
                Entity::find_by_id(NAME.to_owned())
                    .one(db)
                    .await?
                    .ok_or_else(|| Error::internal("server secret missing after insert"))?
            }
        };
        let plain = sealer.open(&stored.value).map_err(Error::internal)?;
        // `keys.encryption_key` turned on after the secret was stored:
        // seal it now (only if still the plain value, so that replicas
        // starting together do not race).
        if sealer.enabled() && !Sealer::is_sealed(&stored.value) {
            let sealed = sealer.seal(&plain).map_err(Error::internal)?;
            Entity::update_many()
                .col_expr(Column::Value, sea_orm::sea_query::Expr::value(sealed))
                .filter(Column::Name.eq(NAME))
                .filter(Column::Value.eq(stored.value.clone()))
                .exec(db)
                .await?;
            tracing::info!("server secret sealed with keys.encryption_key");
        }
        let bytes = STANDARD.decode(plain).map_err(Error::internal)?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::internal("server secret has the wrong length"))?;
        Ok(Self {
            key: std::sync::Arc::new(key),
        })
    }

    /// A key for tests and benchmarks.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self {
            key: std::sync::Arc::new(key),
        }
    }

    /// HMAC-SHA256 of `parts`, each length-prefixed so they cannot run together.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        // Hmac accepts keys of any length; a 32-byte key never fails.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&*self.key) else {
            return [0; 32];
        };
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// [`ServerKey::mac`] as lowercase hex, for storing.
    pub fn mac_hex(&self, parts: &[&[u8]]) -> String {
        hex(&self.mac(parts))
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex(&Sha256::digest(data))
}
