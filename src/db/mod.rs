//! Connecting to the database, running migrations, readiness; [`inline`]:
//! SQLite's hottest statements on the caller's thread.

use std::str::FromStr as _;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, RuntimeErr, SqlxPostgresConnector,
    SqlxSqliteConnector, Statement, TransactionTrait,
};

use crate::config::DatabaseSettings;

pub mod inline;
pub use inline::Inline;

/// How long a pooled connection may sit unused before it is checked with a
/// ping when next taken from the pool.
const IDLE_PING_AFTER: Duration = Duration::from_secs(10);

/// Opens a pool. SQLite runs in WAL mode with `synchronous = NORMAL`, foreign
/// keys on and a busy timeout, set on every connection of the pool.
///
/// sqlx pings a connection each time it leaves the pool by default: on
/// PostgreSQL one extra round trip per query or transaction, on SQLite one
/// extra hop to its worker thread. Only connections that sat idle for
/// [`IDLE_PING_AFTER`] are pinged here (a dead one is replaced before use);
/// one that dies while busy fails its query with a connection error (503)
/// and sqlx drops it on release.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbErr> {
    use sea_orm::sqlx::pool::PoolOptions;
    use sea_orm::sqlx::{self, ConnectOptions as _, Connection as _};

    fn pool_options<DB: sqlx::Database>(max: u32) -> PoolOptions<DB> {
        PoolOptions::new()
            .max_connections(max)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .test_before_acquire(false)
            .before_acquire(|conn: &mut DB::Connection, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_PING_AFTER {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
    }
    let conn_err = |e: sqlx::Error| DbErr::Conn(RuntimeErr::SqlxError(e));
    let url = settings.url.expose();
    let max = settings.pool_size();
    if url.starts_with("sqlite:") {
        if let Some(problem) = sqlite_url_problem(url) {
            return Err(DbErr::Conn(RuntimeErr::Internal(format!(
                "database.url: {problem}; name a file, e.g. sqlite://gatehouse.db?mode=rwc"
            ))));
        }
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(conn_err)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .disable_statement_logging();
        // Processes opening a new file together race to switch it to WAL,
        // which needs the file to themselves: SQLite answers the loser
        // "database is locked" at once rather than wait (two readers both
        // waiting to write would deadlock). Once the file is in WAL the
        // switch is a no-op, so the loser retries and gets through.
        let mut attempt = 0;
        let pool = loop {
            match pool_options(max).connect_with(opts.clone()).await {
                Ok(pool) => break pool,
                Err(e) if attempt < CONNECT_RETRIES && is_sqlite_busy(&e) => {
                    attempt += 1;
                    tracing::info!(error = %e, attempt, "SQLite is locked by another process; retrying");
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
                Err(e) => return Err(conn_err(e)),
            }
        };
        Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let opts = sqlx::postgres::PgConnectOptions::from_str(url)
            .map_err(conn_err)?
            .disable_statement_logging();
        let pool = pool_options(max)
            .connect_with(opts)
            .await
            .map_err(conn_err)?;
        Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
    } else {
        Err(DbErr::Conn(RuntimeErr::Internal(
            "database.url must start with sqlite: or postgres:".into(),
        )))
    }
}

/// How often opening SQLite is retried when another process holds the file
/// (about 10 s in all).
const CONNECT_RETRIES: u32 = 20;

/// Whether SQLite refused because another connection holds a lock
/// (`SQLITE_BUSY` or `SQLITE_LOCKED`, plain or extended).
fn is_sqlite_busy(e: &sea_orm::sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 5 | 6))
}

/// A SQLite URL's file path and its query parameters, both decoded.
fn sqlite_url_parts(url: &str) -> (std::borrow::Cow<'_, str>, form_urlencoded::Parse<'_>) {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    (
        percent_encoding::percent_decode_str(path).decode_utf8_lossy(),
        form_urlencoded::parse(query.as_bytes()),
    )
}

/// Why a SQLite URL cannot be served, if it cannot. The hot paths open the
/// pool's file a second time ([`inline`]), so the URL must name one file on
/// disk that both open and lock alike.
fn sqlite_url_problem(url: &str) -> Option<&'static str> {
    let (path, params) = sqlite_url_parts(url);
    if path.is_empty() || path == ":memory:" {
        return Some("an in-memory or temporary SQLite database is not supported");
    }
    if path.starts_with("file:") {
        return Some("a SQLite URI filename (file:…) is not supported");
    }
    for (key, value) in params {
        match &*key {
            "mode" if value == "memory" => {
                return Some("an in-memory or temporary SQLite database is not supported");
            }
            "vfs" => return Some("another SQLite VFS is not supported (its locking differs)"),
            "immutable" => return Some("an immutable SQLite database is not supported"),
            _ => {}
        }
    }
    None
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

#[cfg(test)]
mod tests {
    use super::sqlite_url_problem;

    #[test]
    fn sqlite_urls_must_name_one_file_both_drivers_share() {
        for ok in [
            "sqlite://gatehouse.db?mode=rwc",
            "sqlite:gatehouse.db",
            "sqlite:///var/lib/gatehouse/g%20h.db?mode=ro",
        ] {
            assert_eq!(sqlite_url_problem(ok), None, "{ok}");
        }
        for refused in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite:",
            "sqlite://x.db?mode=memory",
            "sqlite://x.db?mod%65=memory",
            "sqlite:file:x%3Fmode%3Dmemory",
            "sqlite://x.db?vfs=unix-dotfile",
            "sqlite://x.db?immutable=true",
        ] {
            assert!(sqlite_url_problem(refused).is_some(), "{refused}");
        }
    }
}
