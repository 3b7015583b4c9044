//! Connecting to the database, running migrations, readiness.

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr,
    Statement, TransactionTrait,
};

use crate::config::DatabaseSettings;

/// Opens a pool. SQLite runs in WAL mode with a busy timeout so concurrent
/// writers wait instead of failing.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    let url = settings.url.expose();
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(settings.max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    let db = Database::connect(opts).await?;
    if url.starts_with("sqlite:") {
        for pragma in [
            "PRAGMA journal_mode = WAL",
            "PRAGMA busy_timeout = 5000",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA foreign_keys = ON",
        ] {
            db.execute_unprepared(pragma).await?;
        }
    }
    Ok(db)
}

/// Serialises this process's write transactions on SQLite. SQLite allows
/// one writer at a time; without the gate, concurrent writers collide and
/// SQLite's busy handler sleeps them for up to 100 ms at a time (measured:
/// refresh p99 1.7 s at 32 connections). Waiting in line on an async mutex
/// costs microseconds instead. On PostgreSQL the gate is open.
#[derive(Clone, Default)]
pub struct WriteGate(Option<std::sync::Arc<tokio::sync::Mutex<()>>>);

impl WriteGate {
    /// A gate for `db`'s backend.
    pub fn for_db(db: &DatabaseConnection) -> Self {
        match db.get_database_backend() {
            DbBackend::Sqlite => Self(Some(std::sync::Arc::default())),
            _ => Self(None),
        }
    }

    /// Waits for the turn to write; the turn lasts as long as the guard.
    pub async fn enter(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.0 {
            Some(m) => Some(m.lock().await),
            None => None,
        }
    }
}

/// Key of the PostgreSQL advisory lock that serialises migrations.
const MIGRATION_LOCK: i64 = 0x6761_7465_686f_7573; // "gatehous"

/// Applies every pending migration. Safe to run from several processes at
/// once (replicas starting together): on PostgreSQL they queue on an
/// advisory lock inside one transaction; on SQLite (whose migrations are
/// idempotent `IF NOT EXISTS` statements) a loser of the race retries and
/// finds the work done.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        let txn = db.begin().await?;
        txn.execute(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1)",
            [MIGRATION_LOCK.into()],
        ))
        .await?;
        Migrator::up(&txn, None).await?;
        return txn.commit().await;
    }
    let mut attempt = 0;
    loop {
        match Migrator::up(db, None).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 20 => {
                attempt += 1;
                tracing::debug!(error = %e, attempt, "migration raced another process; retrying");
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether the database answers a trivial query.
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.execute_unprepared("SELECT 1").await.is_ok()
}

/// Whether an error means the database cannot be reached (as opposed to a
/// bad query): the caller answers 503, not 500.
pub fn is_unavailable(e: &DbErr) -> bool {
    let sqlx_err = match e {
        // Opening a connection failed, whatever the reason: the server is
        // down, restarting, or the network between us broke mid-handshake.
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return false,
    };
    use sea_orm::sqlx::Error as E;
    match sqlx_err {
        E::Io(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::Tls(_) => true,
        E::Database(db) => {
            // SQLite: busy/locked/read-only/disk full; PostgreSQL: admin shutdown,
            // cannot connect now (57P01..57P03), connection exceptions (08xxx).
            let code = db.code().unwrap_or_default();
            matches!(
                code.as_ref(),
                "5" | "6" | "8" | "13" | "517" | "261" | "1032"
            ) || code.starts_with("57P")
                || code.starts_with("08")
        }
        _ => false,
    }
}
