//! Operations: metrics, logs, CORS, security headers.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, TestApp, code_in, metric};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_after_a_login_and_parse_as_prometheus_text() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.activated_user("metrics@example.com").await;
    let before = app.get("/metrics").await.text().await.expect("text");
    app.login("metrics@example.com").await;
    app.password_grant("metrics@example.com", "wrong-password")
        .await;
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), StatusCode::OK);
    let after = r.text().await.expect("text");
    assert!(
        metric(
            &after,
            "gatehouse_tokens_issued_total",
            ("grant", "password")
        ) > metric(
            &before,
            "gatehouse_tokens_issued_total",
            ("grant", "password")
        )
    );
    assert!(
        metric(
            &after,
            "gatehouse_login_failures_total",
            ("reason", "bad_credentials")
        ) > metric(
            &before,
            "gatehouse_login_failures_total",
            ("reason", "bad_credentials")
        )
    );
    assert!(
        metric(
            &after,
            "gatehouse_http_requests_total",
            ("route", "/oauth/token")
        ) >= metric(
            &before,
            "gatehouse_http_requests_total",
            ("route", "/oauth/token")
        ) + 2.0
    );
    assert!(
        after.contains("http_request_duration_seconds_bucket"),
        "latency histograms"
    );
    assert!(after.contains("db_pool_connections"), "pool gauges");
}

/// Every log line of the test process, captured once for all tests.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        #[derive(Clone)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("lock").extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,hyper=info,h2=info,sqlx=info,sea_orm=info")
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .try_init();
        buf
    })
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_token_code_or_secret_reaches_the_log() {
    let logs = captured_logs();
    let app = TestApp::spawn_with_mail(Backend::Sqlite, "").await;
    let r = app.register("quiet@example.com", json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let (text, _) = app
        .mail
        .as_ref()
        .expect("sink")
        .wait_for("quiet@example.com", "activation code")
        .await;
    let code = code_in(&text);
    app.post_json(
        "/account/activate",
        &json!({"email": "quiet@example.com", "code": code}),
    )
    .await;
    let t = app.login("quiet@example.com").await;
    let rt = t["refresh_token"].as_str().expect("rt").to_owned();
    let at = t["access_token"].as_str().expect("at").to_owned();
    let t2: serde_json::Value = app.refresh(&rt).await.json().await.expect("json");
    app.post_form("/oauth/revoke", &[("token", &at)]).await;
    app.post_json(
        "/account/password/forgot",
        &json!({"email": "quiet@example.com"}),
    )
    .await;
    let (reset, _) = app
        .mail
        .as_ref()
        .expect("sink")
        .wait_for("quiet@example.com", "token=")
        .await;
    let reset_token: String = reset[reset.find("token=").expect("link") + 6..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    app.password_grant("quiet@example.com", "Wrong-but-logged?")
        .await;
    app.get_bearer("/oauth/userinfo", "garbage.token.here")
        .await;

    let logs = String::from_utf8_lossy(&logs.lock().expect("lock")).into_owned();
    assert!(logs.contains("user registered"), "the capture works");
    for (what, secret) in [
        ("password", PASSWORD),
        ("wrong password", "Wrong-but-logged?"),
        ("activation code", code.as_str()),
        ("refresh token", rt.as_str()),
        (
            "rotated refresh token",
            t2["refresh_token"].as_str().expect("rt"),
        ),
        ("access token", at.as_str()),
        ("reset token", reset_token.as_str()),
        ("argon2 hash", "$argon2id$"),
    ] {
        assert!(!logs.contains(secret), "the log contains the {what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_the_configured_origins() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        "[server]\ncors_origins = [\"https://app.example.com\"]\n",
    )
    .await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/oauth/token"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let r = preflight("https://app.example.com").await.expect("req");
    assert_eq!(
        r.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().expect("ascii")),
        Some("https://app.example.com")
    );
    let r = preflight("https://evil.example").await.expect("req");
    assert!(r.headers().get("access-control-allow-origin").is_none());
}
