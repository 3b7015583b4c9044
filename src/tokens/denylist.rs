//! The access-token deny list: the database table is the truth; checks go
//! through a cache (Redis when configured, so every replica sees a
//! revocation at once; otherwise process memory) so that userinfo and
//! introspection do not query the database on every call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use redis::AsyncCommands as _;
use redis::aio::ConnectionManager;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::store;
use crate::error::Result;

/// Where revoked `jti`s are looked up.
#[derive(Clone)]
enum Cache {
    /// This process only (one replica).
    Memory(Arc<Mutex<HashMap<Uuid, DateTime<Utc>>>>),
    /// Shared by every replica.
    Redis(ConnectionManager, String),
}

/// The deny list.
#[derive(Clone)]
pub struct DenyList {
    db: DatabaseConnection,
    cache: Cache,
}

fn redis_key(prefix: &str, jti: Uuid) -> String {
    format!("{prefix}:deny:{jti}")
}

impl DenyList {
    /// Opens the list; the memory cache starts from the table's live rows.
    pub async fn open(
        db: DatabaseConnection,
        redis: Option<(ConnectionManager, String)>,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        let cache = match redis {
            Some((r, prefix)) => Cache::Redis(r, prefix),
            None => {
                let rows = store::live_denials(&db, now).await?;
                Cache::Memory(Arc::new(Mutex::new(
                    rows.into_iter().map(|r| (r.jti, r.expires_at)).collect(),
                )))
            }
        };
        Ok(Self { db, cache })
    }

    /// Denies `jti` until `expires_at` (durably, then in the cache).
    pub async fn deny(
        &self,
        jti: Uuid,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        store::deny(&self.db, jti, expires_at).await?;
        match &self.cache {
            Cache::Memory(m) => {
                if let Ok(mut m) = m.lock() {
                    m.insert(jti, expires_at);
                }
            }
            Cache::Redis(r, prefix) => {
                let ttl = (expires_at - now).num_seconds().max(1) as u64;
                let mut r = r.clone();
                if let Err(e) = r.set_ex::<_, _, ()>(redis_key(prefix, jti), 1, ttl).await {
                    // The row is in the database; checks fall back to it while
                    // Redis fails, so the revocation still holds.
                    tracing::error!(error = %e, "could not cache a revoked token in Redis");
                    metrics::counter!("gatehouse_redis_errors_total", "op" => "deny").increment(1);
                }
            }
        }
        Ok(())
    }

    /// Whether `jti` was revoked.
    pub async fn is_denied(&self, jti: Uuid, now: DateTime<Utc>) -> Result<bool> {
        match &self.cache {
            Cache::Memory(m) => Ok(m
                .lock()
                .map(|m| m.get(&jti).is_some_and(|exp| *exp > now))
                .unwrap_or(false)),
            Cache::Redis(r, prefix) => {
                let mut r = r.clone();
                match r.exists::<_, bool>(redis_key(prefix, jti)).await {
                    Ok(found) => Ok(found),
                    Err(e) => {
                        tracing::warn!(error = %e, "Redis unavailable; checking the deny list in the database");
                        metrics::counter!("gatehouse_redis_errors_total", "op" => "deny_check")
                            .increment(1);
                        Ok(store::is_denied(&self.db, jti).await?)
                    }
                }
            }
        }
    }

    /// Drops expired entries from the memory cache and the table.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<u64> {
        if let Cache::Memory(m) = &self.cache
            && let Ok(mut m) = m.lock()
        {
            m.retain(|_, exp| *exp > now);
        }
        Ok(store::delete_expired_denials(&self.db, now).await?)
    }
}
