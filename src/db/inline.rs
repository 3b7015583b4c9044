//! SQLite statements on the request's own thread, for the hot paths.
//!
//! sqlx runs every SQLite connection on a thread of its own, so each
//! statement costs two thread switches; the load script's profiles put them
//! at 30 % of `/account/me`'s CPU and 13 % of a refresh's. A statement served
//! from a warm page cache takes microseconds, less than the hop, so the two
//! statements on those paths (the bearer check's read, the refresh
//! rotation) run here instead, through rusqlite on the caller's thread, on
//! the same database file and the same SQLite library as the pool.
//!
//! Writes go through one connection, whose page cache therefore stays
//! valid from one write to the next (SQLite drops a connection's whole cache
//! when another connection has written since its last use); reads take one
//! of a few pooled connections, so they never queue behind each other.
//!
//! A request thread never waits here for a lock: the connections have no
//! busy timeout, and a statement that finds the database busy (another
//! process writing) or the write connection in use runs again on a blocking
//! thread that waits as long as the pool would. Those connections never
//! checkpoint on commit either (the checkpoint's `fsync` would stall the
//! request's thread): every [`CHECKPOINT_EVERY`] writes, a checkpoint runs
//! on a blocking thread. Each connection's page cache is [`CACHE_KIB`].
//!
//! Values are stored as sqlx stores them, so both drivers read each other's
//! rows: UUIDs as 16-byte blobs, instants as RFC 3339 text with `+00:00`,
//! booleans as 0 and 1.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use rusqlite::{Connection, ErrorCode, OpenFlags, Row};
use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbBackend, DbErr, RuntimeErr};
use uuid::Uuid;

use crate::config::DatabaseSettings;

/// How long a statement moved to a blocking thread waits for the lock, as
/// the pool's connections do.
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// The page cache of each connection, in KiB (SQLite's default is 2 MiB).
const CACHE_KIB: u32 = 1024;

/// Writes between two checkpoints: about SQLite's own 1,000 pages of log
/// for refresh rotations (about 10 pages each).
const CHECKPOINT_EVERY: u32 = 100;

/// Inline SQLite access to the database of a pool; off on PostgreSQL.
#[derive(Clone)]
pub struct Inline(Option<Arc<Shared>>);

struct Shared {
    path: PathBuf,
    read_only: bool,
    /// The connection writes go through, opened on first use.
    writer: Mutex<Option<Connection>>,
    /// Idle read connections; at most `keep` stay open.
    idle: Mutex<Vec<Connection>>,
    keep: usize,
    /// Statements waiting on blocking threads for a busy database: at most
    /// `keep` at once (as many as the pool has connections); the rest wait
    /// here, without a thread.
    waiting: Arc<tokio::sync::Semaphore>,
    writes: AtomicU32,
}

impl Inline {
    /// Inline access to `db`'s file when `db` is SQLite, read-only when
    /// its URL says `mode=ro`, as the pool is.
    pub fn for_db(db: &DatabaseConnection, settings: &DatabaseSettings) -> Self {
        if db.get_database_backend() != DbBackend::Sqlite {
            return Self(None);
        }
        let path = db
            .get_sqlite_connection_pool()
            .connect_options()
            .get_filename()
            .to_path_buf();
        let (_, mut params) = super::sqlite_url_parts(settings.url.expose());
        let read_only = params.any(|(k, v)| k == "mode" && v == "ro");
        // A connection is held only while its statements run, never
        // across an await: one per thread that can run them at once, the
        // async executor's one per CPU (read here rather than from
        // `workers`, which sits above this module).
        let keep = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self(Some(Arc::new(Shared {
            path,
            read_only,
            writer: Mutex::new(None),
            idle: Mutex::new(Vec::new()),
            keep,
            waiting: Arc::new(tokio::sync::Semaphore::new(keep)),
            writes: AtomicU32::new(0),
        })))
    }

    /// Whether statements run here (the database is SQLite).
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Runs the reads `f` on a pooled connection on this thread; if the
    /// database is busy, on a blocking thread that waits for it.
    pub async fn read<T, F>(&self, f: F) -> Result<T, DbErr>
    where
        F: Fn(&Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let shared = self.shared()?;
        let conn = shared.take().map_err(to_db_err)?;
        let out = f(&conn);
        shared.put(conn);
        match out {
            Err(e) if is_busy(&e) => {
                shared
                    .clone()
                    .blocking(move |shared| {
                        let conn = shared.take()?;
                        let (out, reusable) = waiting(&conn, &f);
                        if reusable {
                            shared.put(conn);
                        }
                        out
                    })
                    .await
            }
            out => out.map_err(to_db_err),
        }
    }

    /// Runs `f`, which writes, on the write connection on this thread; if
    /// the connection is in use (a checkpoint) or the database busy, on a
    /// blocking thread that waits for both. `f` must be safe to run twice:
    /// a statement that found the database busy wrote nothing, but one
    /// before it in `f` may have.
    pub async fn write<T, F>(&self, f: F) -> Result<T, DbErr>
    where
        F: Fn(&Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let shared = self.shared()?;
        let first = match shared.writer.try_lock() {
            Ok(mut writer) => Some(shared.write_conn(&mut writer).and_then(&f)),
            Err(TryLockError::Poisoned(p)) => {
                Some(shared.write_conn(&mut p.into_inner()).and_then(&f))
            }
            Err(TryLockError::WouldBlock) => None,
        };
        let out = match first {
            Some(out) if !out.as_ref().is_err_and(is_busy) => out.map_err(to_db_err),
            // In use or busy: wait for both on a blocking thread.
            _ => {
                shared
                    .clone()
                    .blocking(move |shared| {
                        let mut writer =
                            shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
                        let (out, reusable) = waiting(shared.write_conn(&mut writer)?, &f);
                        if !reusable {
                            *writer = None;
                        }
                        out
                    })
                    .await
            }
        };
        if out.is_ok() {
            shared.wrote();
        }
        out
    }

    fn shared(&self) -> Result<&Arc<Shared>, DbErr> {
        self.0
            .as_ref()
            .ok_or_else(|| DbErr::Custom("inline SQLite on another database".into()))
    }
}

impl Shared {
    fn take(&self) -> rusqlite::Result<Connection> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(conn) => Ok(conn),
            None => self.open(),
        }
    }

    fn put(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.keep {
            idle.push(conn);
        }
    }

    /// Runs `job` on a blocking thread, once a turn is free: at most `keep`
    /// such threads at once. The turn moves into the thread, so a caller
    /// that goes away meanwhile still holds it until `job` ends.
    async fn blocking<T: Send + 'static>(
        self: Arc<Self>,
        job: impl FnOnce(&Shared) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, DbErr> {
        let turn = self
            .waiting
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| DbErr::Custom(format!("inline SQLite: {e}")))?;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            job(&self).map_err(to_db_err)
        })
        .await
        .map_err(|e| DbErr::Custom(format!("inline SQLite task: {e}")))?
    }

    /// The write connection, opened first if need be.
    fn write_conn<'w>(
        &self,
        writer: &'w mut Option<Connection>,
    ) -> rusqlite::Result<&'w Connection> {
        match writer {
            Some(conn) => Ok(conn),
            None => Ok(writer.insert(self.open()?)),
        }
    }

    /// Counts a committed write; every [`CHECKPOINT_EVERY`] of them, runs a
    /// checkpoint on a blocking thread. It holds the write connection, so
    /// writes queue behind it (on blocking threads), the checkpoint copies
    /// every page of the log, and the next write starts the log over
    /// instead of growing it, as SQLite's own automatic checkpoint would.
    fn wrote(self: &Arc<Self>) {
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        if n % CHECKPOINT_EVERY != CHECKPOINT_EVERY - 1 {
            return;
        }
        let shared = self.clone();
        tokio::task::spawn_blocking(move || {
            let writer = shared.writer.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(conn) = writer.as_ref() else { return };
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::debug!(error = %e, "checkpoint");
            }
        });
    }

    /// A connection set up as the pool's are (WAL, `synchronous = NORMAL`,
    /// foreign keys), without a busy timeout or automatic checkpoints.
    fn open(&self) -> rusqlite::Result<Connection> {
        let access = if self.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        };
        let conn =
            Connection::open_with_flags(&self.path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(Duration::ZERO)?;
        conn.execute_batch(&format!(
            "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -{CACHE_KIB};"
        ))?;
        Ok(conn)
    }
}

/// Runs `f` on `conn` waiting up to [`BUSY_WAIT`] for the lock, then sets
/// the connection back to not waiting; `false` if that failed (the
/// connection must not serve a request thread again).
fn waiting<T>(
    conn: &Connection,
    f: &impl Fn(&Connection) -> rusqlite::Result<T>,
) -> (rusqlite::Result<T>, bool) {
    if let Err(e) = conn.busy_timeout(BUSY_WAIT) {
        return (Err(e), true);
    }
    let out = f(conn);
    (out, conn.busy_timeout(Duration::ZERO).is_ok())
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// As the pool's errors are classed: a database that is busy, locked,
/// read-only or full is a connection error (503), anything else a query
/// error (500).
fn to_db_err(e: rusqlite::Error) -> DbErr {
    // The codes `db::is_unavailable` reads from the pool's errors.
    let unavailable = matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::ReadOnly
                | ErrorCode::DiskFull
        )
    );
    if unavailable {
        DbErr::Conn(RuntimeErr::Internal(e.to_string()))
    } else {
        DbErr::Query(RuntimeErr::Internal(e.to_string()))
    }
}

/// An instant as sqlx binds it on SQLite.
pub fn time_value(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// Column `i` of `row` as a UUID.
pub fn uuid(row: &Row<'_>, i: usize) -> rusqlite::Result<Uuid> {
    let bytes: Vec<u8> = row.get(i)?;
    Uuid::from_slice(&bytes).map_err(|e| conversion(i, e))
}

/// Column `i` of `row` as an optional UUID.
pub fn opt_uuid(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<Uuid>> {
    let bytes: Option<Vec<u8>> = row.get(i)?;
    bytes
        .map(|b| Uuid::from_slice(&b).map_err(|e| conversion(i, e)))
        .transpose()
}

/// Column `i` of `row` as an instant, in the forms sqlx reads.
pub fn time(row: &Row<'_>, i: usize) -> rusqlite::Result<DateTime<Utc>> {
    opt_time(row, i)?.ok_or(rusqlite::Error::InvalidColumnType(
        i,
        "NULL instant".into(),
        rusqlite::types::Type::Null,
    ))
}

/// Column `i` of `row` as an optional instant: text as sqlx reads it, or
/// seconds since the epoch.
pub fn opt_time(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    use rusqlite::types::ValueRef;
    match row.get_ref(i)? {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(secs) => DateTime::from_timestamp(secs, 0)
            .map(Some)
            .ok_or_else(|| conversion(i, format!("not an instant: {secs}"))),
        ValueRef::Text(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|e| conversion(i, e))?;
            parse_time(text)
                .map(Some)
                .ok_or_else(|| conversion(i, format!("not an instant: {text}")))
        }
        other => Err(rusqlite::Error::InvalidColumnType(
            i,
            "instant".into(),
            other.data_type(),
        )),
    }
}

/// RFC 3339, then the date-and-time forms sqlx also reads (UTC unless they
/// carry an offset).
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    const FORMS: [&str; 13] = [
        "%F %T%.f",
        "%F %R",
        "%F %RZ",
        "%F %R%:z",
        "%F %T%.fZ",
        "%F %T%.f%:z",
        "%FT%R",
        "%FT%RZ",
        "%FT%R%:z",
        "%FT%T%.f",
        "%FT%T%.fZ",
        "%FT%T%.f%:z",
        "%F %T",
    ];
    FORMS.iter().find_map(|form| {
        DateTime::parse_from_str(text, form)
            .map(|at| at.with_timezone(&Utc))
            .or_else(|_| NaiveDateTime::parse_from_str(text, form).map(|n| n.and_utc()))
            .ok()
    })
}

fn conversion(i: usize, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_read_back_as_written_and_in_sqlites_own_forms() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:20:30.123456789Z")
            .expect("instant")
            .with_timezone(&Utc);
        assert_eq!(parse_time(&time_value(at)), Some(at));
        let whole = DateTime::from_timestamp(1_700_000_000, 0).expect("instant");
        assert_eq!(time_value(whole), "2023-11-14T22:13:20+00:00");
        for text in [
            "2023-11-14 22:13:20",
            "2023-11-14T22:13:20",
            "2023-11-14 22:13:20Z",
            "2023-11-14 23:13:20+01:00",
        ] {
            assert_eq!(parse_time(text), Some(whole), "{text}");
        }
        assert_eq!(parse_time("yesterday"), None);
    }
}
