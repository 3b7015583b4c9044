//! Where rate limits and the deny list live: the Redis matrix.

use super::databases::{Backend, redis_url};

/// Where rate limits and the deny list live in a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shared {
    /// In process memory, on SQLite.
    Memory,
    /// In Redis (GATEHOUSE_TEST_REDIS_URL), on PostgreSQL.
    Redis,
}

/// Runs an `async fn(Shared)` test with in-memory limits on SQLite, and with
/// Redis on PostgreSQL when asked for with `--include-ignored`.
#[macro_export]
macro_rules! shared {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory_sqlite() {
                super::$name($crate::helpers::Shared::Memory).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[ignore = "needs PostgreSQL and Redis: set GATEHOUSE_TEST_DATABASE_URL and GATEHOUSE_TEST_REDIS_URL and run with --include-ignored"]
            async fn redis_postgres() {
                super::$name($crate::helpers::Shared::Redis).await
            }
        }
    };
}

impl Shared {
    /// The database backend that goes with it.
    pub fn backend(self) -> Backend {
        match self {
            Shared::Memory => Backend::Sqlite,
            Shared::Redis => Backend::Postgres,
        }
    }

    /// TOML for `[redis]`: a fresh key prefix per call (one deployment).
    pub fn redis_toml(self) -> String {
        match self {
            Shared::Memory => String::new(),
            Shared::Redis => format!(
                "[redis]\nurl = \"{}\"\nprefix = \"gh-test-{}\"\n",
                redis_url(),
                uuid::Uuid::new_v4().simple()
            ),
        }
    }
}
