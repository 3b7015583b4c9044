//! Test databases: which backend a test runs on, and a fresh database per
//! test (a SQLite file in a temp dir, or a fresh PostgreSQL database when
//! GATEHOUSE_TEST_DATABASE_URL is set), plus the Redis URL for tests.

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temp dir.
    Sqlite,
    /// A fresh database on GATEHOUSE_TEST_DATABASE_URL's server.
    Postgres,
}

/// Runs an `async fn(Backend)` test on SQLite, and on PostgreSQL when asked
/// for with `--include-ignored` (CI always does).
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs PostgreSQL: set GATEHOUSE_TEST_DATABASE_URL and run with --include-ignored"]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    };
}

/// The Redis URL for tests, or a loud failure: tests that need Redis are
/// `#[ignore]`d with a reason, so reaching here without it is a setup error.
pub fn redis_url() -> String {
    std::env::var("GATEHOUSE_TEST_REDIS_URL")
        .expect("this test needs Redis: set GATEHOUSE_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379)")
}

/// A database for one test; dropped (PostgreSQL) when the guard goes.
pub struct TestDb {
    /// URL the app connects to.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// A fresh, empty database.
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("gatehouse.db").display()
                );
                Self {
                    url,
                    _dir: Some(dir),
                    pg: None,
                }
            }
            Backend::Postgres => {
                let admin = std::env::var("GATEHOUSE_TEST_DATABASE_URL").expect(
                    "this test needs PostgreSQL: set GATEHOUSE_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1/postgres)",
                );
                let name = format!("gh_test_{}", uuid::Uuid::new_v4().simple());
                let db = sea_orm::Database::connect(&admin)
                    .await
                    .expect("connect to PostgreSQL");
                use sea_orm::ConnectionTrait as _;
                db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create database");
                let _ = db.close().await;
                let base = admin.split('?').next().unwrap_or(&admin);
                let (server, _) = base.rsplit_once('/').expect("database URL has a path");
                Self {
                    url: format!("{server}/{name}"),
                    _dir: None,
                    pg: Some((admin, name)),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop needs async; do it on a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    if let Ok(db) = sea_orm::Database::connect(&admin).await {
                        use sea_orm::ConnectionTrait as _;
                        let _ = db
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                        let _ = db.close().await;
                    }
                });
            })
            .join();
        }
    }
}
