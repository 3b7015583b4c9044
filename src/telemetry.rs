//! Logging: human-readable lines by default, JSON when asked.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG`, when set, overrides `level`.
/// Calling it twice is harmless (the first wins).
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    use std::io::IsTerminal as _;
    // Logs go to stderr (stdout is for what a command prints: `openapi`,
    // `config check`, `keys list`), coloured only on a terminal.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// Registers every counter at zero, so that dashboards and alerts see each
/// series from the first scrape (a counter that appears only on its first
/// event reads as "no data", and `rate()` misses that first event).
/// `limits` are the rate-limit names. (Request counts are labelled by
/// status too, which cannot be listed ahead; they start with the first
/// request.)
pub fn zero_counters(limits: &[&'static str]) {
    for (name, label, values) in [
        (
            "gatehouse_config_reloads_total",
            "result",
            &["ok", "error"][..],
        ),
        (
            "gatehouse_login_failures_total",
            "reason",
            &["bad_credentials", "throttled"][..],
        ),
        (
            "gatehouse_mail_total",
            "result",
            &["sent", "failed", "dropped"][..],
        ),
        ("gatehouse_redis_errors_total", "op", &["rate_limit"][..]),
        (
            "gatehouse_tokens_issued_total",
            "grant",
            &["password", "refresh_token"][..],
        ),
        ("gatehouse_rate_limited_total", "limit", limits),
    ] {
        for v in values {
            metrics::counter!(name, label => *v).increment(0);
        }
    }
    metrics::gauge!("gatehouse_mail_queue_depth").set(0.0);
    for name in [
        "gatehouse_refresh_reuse_detected_total",
        "gatehouse_users_registered_total",
        "gatehouse_mail_retries_total",
        "gatehouse_rate_limit_fallbacks_total",
    ] {
        metrics::counter!(name).increment(0);
    }
}
