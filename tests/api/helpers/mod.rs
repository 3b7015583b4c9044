//! Test support, one module per job.

mod app;
mod browser;
mod chaos;
mod databases;
mod metrics;
mod shared;
mod smtp;

// `self::` throughout: `metrics` is also the name of a dependency, and a
// bare `metrics::` path here would be ambiguous.
pub use self::app::{ISSUER, PASSWORD, TestApp, assert_error, jwt_header, settings, settings_toml};
pub use self::browser::{Browser, pkce, query_of};
pub use self::chaos::ChaosProxy;
pub use self::databases::{Backend, TestDb, redis_url};
pub use self::metrics::metric;
pub use self::shared::Shared;
pub use self::smtp::{MailSink, code_in};
