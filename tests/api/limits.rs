//! Rate limits and brute force, in memory (SQLite) and in Redis (PostgreSQL).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{ChaosProxy, PASSWORD, Shared, TestApp, assert_error, redis_url};
use crate::shared;

async fn grant_from(app: &TestApp, ip: &str, user: &str, password: &str) -> reqwest::Response {
    app.http
        .post(app.url("/oauth/token"))
        .header("x-forwarded-for", ip)
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .expect("request")
}

async fn password_grants_are_limited_per_client_ip(shared: Shared) {
    let extra = format!(
        "{}\n[rate_limits]\nlogin_per_ip = \"3/1m\"\n",
        shared.redis_toml()
    );
    let app = TestApp::spawn_with(shared.backend(), &extra).await;
    app.activated_user("ip@example.com").await;
    for _ in 0..3 {
        assert_eq!(
            app.password_grant("ip@example.com", PASSWORD)
                .await
                .status(),
            StatusCode::OK
        );
    }
    let r = app.password_grant("ip@example.com", PASSWORD).await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(
        (1..=20).contains(&retry),
        "one request frees every 20 s: {retry}"
    );
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    app.advance(Duration::from_secs(21));
    assert_eq!(
        app.password_grant("ip@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}
shared!(password_grants_are_limited_per_client_ip);

async fn x_forwarded_for_counts_only_from_trusted_proxies(shared: Shared) {
    // Untrusted peer: the header is ignored, every request is the socket's IP.
    let extra = format!(
        "{}\n[rate_limits]\nlogin_per_ip = \"2/1m\"\n",
        shared.redis_toml()
    );
    let app = TestApp::spawn_with(shared.backend(), &extra).await;
    app.activated_user("xff@example.com").await;
    assert_eq!(
        grant_from(&app, "10.0.0.1", "xff@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        grant_from(&app, "10.0.0.2", "xff@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    let r = grant_from(&app, "10.0.0.3", "xff@example.com", PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a spoofed header must not escape the limit"
    );

    // Trusted proxy: each forwarded client has its own bucket.
    let extra = format!(
        "{}\n[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n[rate_limits]\nlogin_per_ip = \"2/1m\"\n",
        shared.redis_toml()
    );
    let app = TestApp::spawn_with(shared.backend(), &extra).await;
    app.activated_user("xff@example.com").await;
    for ip in ["10.0.0.1", "10.0.0.2", "10.0.0.3"] {
        for _ in 0..2 {
            assert_eq!(
                grant_from(&app, ip, "xff@example.com", PASSWORD)
                    .await
                    .status(),
                StatusCode::OK,
                "{ip}"
            );
        }
    }
    assert_eq!(
        grant_from(&app, "10.0.0.1", "xff@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}
shared!(x_forwarded_for_counts_only_from_trusted_proxies);

async fn fifty_parallel_guesses_cannot_pass_a_limit_of_five(shared: Shared) {
    let extra = format!(
        "{}\n[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n[rate_limits]\nlogin_failures_per_account_ip = \"5/15m\"\nlogin_failures_per_account = \"50/1h\"\n",
        shared.redis_toml()
    );
    let app = TestApp::spawn_with(shared.backend(), &extra).await;
    app.activated_user("victim@example.com").await;
    let mut handles = Vec::new();
    for i in 0..50 {
        let http = app.http.clone();
        let url = app.url("/oauth/token");
        handles.push(tokio::spawn(async move {
            let pw = format!("guess-number-{i}");
            let r = http
                .post(url)
                .header("x-forwarded-for", "203.0.113.9")
                .form(&[
                    ("grant_type", "password"),
                    ("username", "victim@example.com"),
                    ("password", pw.as_str()),
                ])
                .send()
                .await
                .expect("request");
            (r.status(), r.text().await.expect("body"))
        }));
    }
    let mut bodies = std::collections::HashSet::new();
    for h in handles {
        let (status, body) = h.await.expect("task");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        bodies.insert(body);
    }
    assert_eq!(
        bodies.len(),
        1,
        "a throttled guess answers exactly like a wrong password"
    );
    // The attacker's IP is now locked out even with the right password...
    let r = grant_from(&app, "203.0.113.9", "victim@example.com", PASSWORD).await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // ...the real user, from their usual IP, is not.
    assert_eq!(
        grant_from(&app, "198.51.100.7", "victim@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    // And the lock frees itself when the window passes.
    app.advance(Duration::from_secs(15 * 60));
    assert_eq!(
        grant_from(&app, "203.0.113.9", "victim@example.com", PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
}
shared!(fifty_parallel_guesses_cannot_pass_a_limit_of_five);

async fn guessing_from_many_ips_hits_the_ceiling_but_never_locks_the_owner_out(shared: Shared) {
    let extra = format!(
        "{}\n[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n[rate_limits]\nlogin_failures_per_account_ip = \"5/15m\"\nlogin_failures_per_account = \"8/1h\"\n",
        shared.redis_toml()
    );
    let app = TestApp::spawn_with(shared.backend(), &extra).await;
    app.activated_user("spread@example.com").await;
    // The owner logs in from home, as usual.
    let r = grant_from(&app, "192.0.2.10", "spread@example.com", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Strangers spend the account's ceiling from many addresses.
    for i in 0..8 {
        let ip = format!("203.0.113.{i}");
        let r = grant_from(&app, &ip, "spread@example.com", "wrong-guess").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    // Distributed guessing is throttled: even the right password from a new
    // address answers like a wrong one.
    let r = grant_from(&app, "198.51.100.7", "spread@example.com", PASSWORD).await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // The owner is not locked out of where they log in.
    let r = grant_from(&app, "192.0.2.10", "spread@example.com", PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the owner's source keeps its budget"
    );
    // That budget is the owner's own (per account and source), not a
    // bypass: wrong guesses from there stop at it.
    for _ in 0..5 {
        let r = grant_from(&app, "192.0.2.10", "spread@example.com", "wrong-guess").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    let r = grant_from(&app, "192.0.2.10", "spread@example.com", PASSWORD).await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
}
shared!(guessing_from_many_ips_hits_the_ceiling_but_never_locks_the_owner_out);

async fn forgot_password_is_limited_per_email(shared: Shared) {
    let extra = format!(
        "{}\n[rate_limits]\nforgot_per_email = \"2/1h\"\n",
        shared.redis_toml()
    );
    let app = TestApp::spawn_with(shared.backend(), &extra).await;
    let body = serde_json::json!({"email": "someone@example.com"});
    for _ in 0..2 {
        assert_eq!(
            app.post_json("/account/password/forgot", &body)
                .await
                .status(),
            StatusCode::ACCEPTED
        );
    }
    let r = app.post_json("/account/password/forgot", &body).await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}
shared!(forgot_password_is_limited_per_email);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis: set GATEHOUSE_TEST_REDIS_URL and run with --include-ignored"]
async fn with_redis_down_limits_fall_back_to_this_process_and_readiness_reports_it() {
    let target: std::net::SocketAddr = redis_url()
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .parse()
        .expect("GATEHOUSE_TEST_REDIS_URL as redis://HOST:PORT");
    let proxy = ChaosProxy::start(target).await;
    let extra = format!(
        "[redis]\nurl = \"redis://127.0.0.1:{}\"\nprefix = \"gh-test-{}\"\n[rate_limits]\nlogin_per_ip = \"4/1h\"\n",
        proxy.port,
        uuid::Uuid::new_v4().simple()
    );
    let app = TestApp::spawn_with(crate::helpers::Backend::Sqlite, &extra).await;
    app.activated_user("redisdown@example.com").await;
    let t = app.login("redisdown@example.com").await;
    let at = t["access_token"].as_str().expect("at").to_owned();
    let revoked = app.login("redisdown@example.com").await;
    let revoked_at = revoked["access_token"].as_str().expect("at").to_owned();
    app.post_form("/oauth/revoke", &[("token", &revoked_at)])
        .await;

    proxy.cut().await;
    let mut body = Value::Null;
    for _ in 0..50 {
        let r = app.get("/readyz").await;
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            body = r.json().await.expect("json");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(body["redis"], "down");
    assert_eq!(body["database"], "up");
    // Logins go on, limited by this process instead (never by nothing:
    // filling or cutting Redis must not switch limits off).
    for _ in 0..4 {
        assert_eq!(
            app.password_grant("redisdown@example.com", PASSWORD)
                .await
                .status(),
            StatusCode::OK
        );
    }
    assert_error(
        app.password_grant("redisdown@example.com", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.contains("gatehouse_rate_limit_fallbacks_total"));
    assert_eq!(
        app.get_bearer("/oauth/userinfo", &at).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get_bearer("/oauth/userinfo", &revoked_at)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    proxy.restore();
    let mut ready = false;
    for _ in 0..50 {
        if app.get("/readyz").await.status() == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "readiness recovers by itself when Redis is back");
}
