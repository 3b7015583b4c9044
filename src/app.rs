//! Wiring: builds every service from [`Settings`] into one [`AppState`].
//! `gatehouse serve` ([`crate::server`]), the CLI commands and the tests
//! all build through here.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use redis::aio::ConnectionManager;
use sea_orm::DatabaseConnection;

use crate::accounts::Accounts;
use crate::captcha::Captcha;
use crate::clock::Clock;
use crate::config::{LiveSettings, Settings};
use crate::keys::KeyRing;
use crate::limits::Limiter;
use crate::mail::Mailer;
use crate::oauth::OAuth;
use crate::passwords::Hasher;
use crate::sealing::Sealer;
use crate::secrets::ServerKey;
use crate::sessions::Sessions;
use crate::shutdown::Shutdown;
use crate::tokens::Tokens;
use crate::tokens::denylist::DenyList;

/// Everything a request may need: one `Arc` of [`Services`], so the copy
/// each request carries costs one reference count, not one per service.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind an [`AppState`].
pub struct Services {
    /// Live settings; hot sections change on reload.
    pub live: LiveSettings,
    /// The one wall clock (tests move it forward).
    pub clock: Clock,
    /// Database pool.
    pub db: DatabaseConnection,
    /// Redis, when configured (limits, deny-list cache).
    pub redis: Option<ConnectionManager>,
    /// Signing keys; reloaded from the database every 30 s.
    pub keys: KeyRing,
    /// OAuth use cases: grants, revocation, introspection, bearer checks.
    pub oauth: OAuth,
    /// Account service.
    pub accounts: Accounts,
    /// Rate limiter.
    pub limits: Limiter,
    /// Prometheus recorder handle (process-wide).
    pub metrics: PrometheusHandle,
}

/// The process-wide Prometheus recorder.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets(&buckets)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(h) => h,
                // Another recorder is installed (cannot happen in the binary):
                // keep a detached one so /metrics still renders.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// The longest a token may live, for how long retired keys stay published.
fn max_token_ttl(settings: &Settings) -> Duration {
    settings.tokens.access_ttl.max(settings.tokens.id_token_ttl)
}

impl AppState {
    /// Connects, migrates and builds every service.
    pub async fn build(settings: Settings, shutdown: Shutdown) -> anyhow::Result<Self> {
        let metrics = metrics_handle();
        crate::telemetry::zero_counters(
            &crate::limits::LimitKind::ALL.map(crate::limits::LimitKind::name),
        );
        let clock = Clock::default();
        let db = crate::db::connect(&settings.database)
            .await
            .context("connecting to the database")?;
        crate::db::migrate(&db)
            .await
            .context("applying migrations")?;
        let redis = match &settings.redis.url {
            Some(url) => Some(connect_redis(url.expose()).await?),
            None => None,
        };
        let now = clock.now();
        let sealer = Sealer::new(settings.keys.encryption_key.as_ref().map(|k| k.expose()));
        let keys = KeyRing::open(
            db.clone(),
            sealer.clone(),
            settings.keys.rsa_bits,
            &settings.signing_algs(),
            settings.keys.private_key_file.as_deref(),
            now,
            max_token_ttl(&settings),
            settings.keys.jwks_max_age,
        )
        .await
        .context("loading signing keys")?;
        let server_key = ServerKey::open(&db, &sealer, now)
            .await
            .context("loading the server secret")?;
        let hasher = Hasher::new(&settings.password_hash).await?;
        let mailer = Mailer::start(&settings.mail, shutdown.clone())?;
        let captcha = Captcha::new(settings.captcha.clone())?;
        let live = LiveSettings::new(settings);
        let prefix = live.get().redis.prefix.clone();
        let limits = match &redis {
            Some(r) => Limiter::redis(r.clone(), prefix.clone(), live.clone(), clock.clone()),
            None => Limiter::memory(live.clone(), clock.clone()),
        };
        let deny = DenyList::new(db.clone());
        let tokens = Tokens::new(keys.clone(), live.clone(), clock.clone(), deny)?;
        // SQLite's hot statements on the request's thread, one set of
        // connections for the process.
        let inline = crate::db::Inline::for_db(&db, &live.get().database);
        let sessions = Sessions::new(
            db.clone(),
            inline.clone(),
            live.clone(),
            clock.clone(),
            server_key.clone(),
        );
        let accounts = Accounts::new(
            db.clone(),
            live.clone(),
            clock.clone(),
            hasher,
            server_key.clone(),
            limits.clone(),
            mailer,
            captcha,
        );
        let oauth = OAuth::new(
            db.clone(),
            inline,
            server_key,
            accounts.clone(),
            sessions,
            tokens,
            limits.clone(),
            live.clone(),
            clock.clone(),
        );
        Ok(Self(Arc::new(Services {
            live,
            clock,
            db,
            redis,
            keys,
            oauth,
            accounts,
            limits,
            metrics,
        })))
    }

    /// Whether the database answers, and Redis (`None` when not configured).
    pub async fn readiness(&self) -> (bool, Option<bool>) {
        let db = crate::db::ping(&self.db).await;
        let redis = match &self.redis {
            Some(r) => {
                let mut r = r.clone();
                Some(
                    redis::cmd("PING")
                        .query_async::<String>(&mut r)
                        .await
                        .is_ok(),
                )
            }
            None => None,
        };
        (db, redis)
    }

    /// Updates the connection-pool gauges.
    pub fn record_pool_metrics(&self) {
        let (size, idle) = match &self.db {
            DatabaseConnection::SqlxPostgresPoolConnection(_) => {
                let p = self.db.get_postgres_connection_pool();
                (p.size(), p.num_idle() as u32)
            }
            DatabaseConnection::SqlxSqlitePoolConnection(_) => {
                let p = self.db.get_sqlite_connection_pool();
                (p.size(), p.num_idle() as u32)
            }
            _ => (0, 0),
        };
        metrics::gauge!("gatehouse_db_pool_connections", "state" => "idle").set(f64::from(idle));
        metrics::gauge!("gatehouse_db_pool_connections", "state" => "in_use")
            .set(f64::from(size.saturating_sub(idle)));
    }

    /// Re-reads keys (rotations by other replicas), periodically.
    pub(crate) async fn reload_keys(&self) {
        let settings = self.live.get();
        if let Err(e) = self
            .keys
            .reload(self.clock.now(), max_token_ttl(&settings))
            .await
        {
            tracing::warn!(error = %e, "could not reload signing keys");
        }
    }
}

async fn connect_redis(url: &str) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(url).context("redis.url")?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_millis(500)))
        .set_number_of_retries(2);
    tokio::time::timeout(
        Duration::from_secs(5),
        ConnectionManager::new_with_config(client, config),
    )
    .await
    .context("connecting to Redis timed out")?
    .context("connecting to Redis")
}
