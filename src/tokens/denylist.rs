//! The access-token deny list, kept in the database and read from it on
//! every check.
//!
//! It used to be cached in Redis (or process memory) with a cache miss read
//! as "not revoked": a Redis restart without persistence, a FLUSHALL, a
//! failover or an eviction brought revoked tokens back, and replicas without
//! Redis knew only their own revocations. The database is the truth every
//! replica shares, so the check is one primary-key lookup there: a miss
//! can then only mean "not revoked".

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::store;
use crate::error::Result;

/// The deny list.
#[derive(Clone)]
pub struct DenyList {
    db: DatabaseConnection,
}

impl DenyList {
    /// The list over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Denies `jti` until `until`: when the token can no longer be accepted
    /// (its `exp` plus the verification leeway).
    pub async fn deny(&self, jti: Uuid, until: DateTime<Utc>) -> Result<()> {
        store::deny(&self.db, jti, until).await?;
        Ok(())
    }

    /// Whether `jti` was revoked.
    pub async fn is_denied(&self, jti: Uuid) -> Result<bool> {
        Ok(store::is_denied(&self.db, jti).await?)
    }

    /// Drops entries whose tokens can no longer be accepted anyway.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<u64> {
        Ok(store::delete_expired_denials(&self.db, now).await?)
    }
}
