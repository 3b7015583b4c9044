//! Abuse resistance, as an attacker would try it: look-alike addresses,
//! squatting an address, bodies with no length.
//!
//! (Over 500 lines: each attack is one story with its setup in full, so a
//! reader sees what the attacker sends without chasing helpers.)

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, code_in};

/// A second password the policy accepts.
const OTHER_PASSWORD: &str = "quiet-Harbor-compass-77";

async fn a_look_alike_address_cannot_squat_the_real_one(backend: Backend) {
    let app = TestApp::spawn_with_mail(backend, "").await;
    let mail = app.mail.as_ref().expect("sink");
    // A stranger registers with U+212A KELVIN SIGN in place of the K.
    let squatter = "\u{212A}ate@example.com";
    assert_eq!(
        app.register(squatter, json!({})).await.status(),
        StatusCode::CREATED
    );

    // The owner registers their own address: not 409, a fresh code, sent to
    // the canonical spelling (the owner's), not the look-alike.
    let r = app
        .post_json(
            "/account/register",
            &json!({"email": "kate@example.com", "password": OTHER_PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["user"]["email"], "kate@example.com");
    assert_eq!(b["activation_required"], true);
    let (text, _) = mail.wait_for("kate@example.com", "activation code").await;
    let r = app
        .post_json(
            "/account/activate",
            &json!({"email": "KATE@example.com", "code": code_in(&text)}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // A contested registration keeps no password: not the squatter's, not
    // even the owner's; the owner chooses one through the mailed link.
    for pw in [PASSWORD, OTHER_PASSWORD] {
        assert_error(
            app.password_grant("kate@example.com", pw).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
    }
    let (text, _) = mail
        .wait_for("kate@example.com", "Choose your password")
        .await;
    let token = crate::email::reset_token(&text);
    let r = app
        .post_json(
            "/account/password/reset",
            &json!({"token": token, "password": "bright-Canyon-pillar-31"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .password_grant("kate@example.com", "bright-Canyon-pillar-31")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Every spelling is the one account, now taken.
    let r = app
        .password_grant(squatter, "bright-Canyon-pillar-31")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    for spelling in ["kate@example.com", squatter, "\u{FF4B}ate@example.com"] {
        assert_error(
            app.register(spelling, json!({})).await,
            StatusCode::CONFLICT,
            "email_taken",
        )
        .await;
    }
}
both!(a_look_alike_address_cannot_squat_the_real_one);

async fn registering_over_a_pending_account_cannot_take_it_over(backend: Backend) {
    let app = TestApp::spawn_with_mail(backend, "").await;
    let mail = app.mail.as_ref().expect("sink");
    // The victim registers; before they activate, an attacker registers the
    // same address in another spelling with a password of their own.
    let r = app
        .register(
            "victim@example.com",
            json!({"phone_number": "+14155550123"}),
        )
        .await;
    let b: Value = r.json().await.expect("json");
    let victim_id = b["user"]["id"].clone();
    mail.wait_for("victim@example.com", "activation code").await;
    let r = app
        .post_json(
            "/account/register",
            &json!({"email": "Victim@Example.com", "password": OTHER_PASSWORD, "given_name": "Mallory"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let b: Value = r.json().await.expect("json");
    assert_eq!(
        b["user"]["given_name"], "Mallory",
        "the attacker sees only what they sent"
    );
    assert_ne!(b["user"]["id"], victim_id, "not the pending account's id");
    mail.wait_count(2).await;
    // The victim enters the newest code in their mailbox.
    let (text, _) = mail.wait_for("victim@example.com", "activation code").await;
    let r = app
        .post_json(
            "/account/activate",
            &json!({"email": "victim@example.com", "code": code_in(&text)}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let b: Value = r.json().await.expect("json");
    assert_ne!(
        b["user"]["given_name"], "Mallory",
        "the profile is not the attacker's"
    );
    // The attacker's password gets nothing.
    assert_error(
        app.password_grant("victim@example.com", OTHER_PASSWORD)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    // The victim chooses a password through their own mailbox.
    let (text, _) = mail
        .wait_for("victim@example.com", "Choose your password")
        .await;
    let r = app
        .post_json(
            "/account/password/reset",
            &json!({"token": crate::email::reset_token(&text), "password": "bright-Canyon-pillar-31"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.password_grant("victim@example.com", "bright-Canyon-pillar-31")
            .await
            .status(),
        StatusCode::OK
    );
}
both!(registering_over_a_pending_account_cannot_take_it_over);

async fn unactivated_accounts_are_swept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        app.register("never@example.com", json!({})).await.status(),
        StatusCode::CREATED
    );
    app.activated_user("proven@example.com").await;
    let db = &app.state.db;
    let now = app.state.clock.now();
    let week = chrono::Duration::days(7);
    let gone = gatehouse::accounts::store::delete_unactivated(db, now - week)
        .await
        .expect("sweep");
    assert_eq!(gone, 0, "nothing is old enough yet");
    let gone = gatehouse::accounts::store::delete_unactivated(db, now + week)
        .await
        .expect("sweep");
    assert_eq!(gone, 1, "only the unactivated account goes");
    assert!(
        gatehouse::accounts::store::find_by_email(db, "proven@example.com")
            .await
            .expect("query")
            .is_some()
    );
}
both!(unactivated_accounts_are_swept);

/// Bytes a streaming request body handed to the client so far.
fn counting_zeros(
    total: usize,
    sent: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> reqwest::Body {
    const CHUNK: usize = 64 * 1024;
    let chunks = total / CHUNK;
    let stream = futures_util::stream::iter((0..chunks).map(move |_| {
        sent.fetch_add(CHUNK, std::sync::atomic::Ordering::Relaxed);
        Ok::<_, std::io::Error>(vec![0u8; CHUNK])
    }));
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_body_without_a_length_is_cut_off_at_the_cap() {
    let app = TestApp::spawn_with(Backend::Sqlite, "[server]\nmax_body_bytes = 65536\n").await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .expect("client");
    // HTTP/2 needs neither Content-Length nor Transfer-Encoding: a stream
    // body sends neither. 300 MB offered; the server must stop near the cap.
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let r = h2
        .post(app.url("/oauth/token"))
        .header("content-type", "application/json")
        .body(counting_zeros(300 * 1024 * 1024, sent.clone()))
        .send()
        .await;
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    match r {
        Ok(r) => {
            assert_eq!(r.version(), reqwest::Version::HTTP_2);
            assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
        }
        // The server may reset the stream once it has answered.
        Err(e) => assert!(!e.is_timeout(), "the server never answered: {e}"),
    }
    // The cap, plus what HTTP/2 flow-control windows let through.
    assert!(
        sent < 16 * 1024 * 1024,
        "the server read {sent} bytes of a body capped at 64 KiB"
    );
    // A body within the cap over HTTP/2 still works.
    let r = h2
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "x@example.com"),
            ("password", "y"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

/// Sends raw HTTP/1.1 bytes and returns what came back before the server
/// closed the connection (or 10 s passed).
async fn raw_http1(app: &TestApp, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = app
        .url("/")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_breaks_its_framing_is_a_bad_request_not_too_large() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    // "zz" is not a chunk size: the body cannot be read at all, which says
    // nothing about its size.
    let answer = raw_http1(
        &app,
        b"POST /oauth/token HTTP/1.1\r\nHost: localhost\r\n\
          Content-Type: application/x-www-form-urlencoded\r\n\
          Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          zz\r\ngrant_type=password\r\n0\r\n\r\n",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "a broken chunked body: {answer}"
    );
    assert!(answer.contains("\"invalid_request\""), "{answer}");
    assert!(answer.contains("could not be read"), "{answer}");
    // A well-framed chunked body is read as usual.
    let answer = raw_http1(
        &app,
        b"POST /oauth/token HTTP/1.1\r\nHost: localhost\r\n\
          Content-Type: application/x-www-form-urlencoded\r\n\
          Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          13\r\ngrant_type=password\r\n0\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("\"invalid_request\""),
        "read, and refused for its missing fields: {answer}"
    );
}

async fn grant_with_forwarded(app: &TestApp, lines: &[&str]) -> StatusCode {
    let mut req = app.http.post(app.url("/oauth/token"));
    for l in lines {
        req = req.header("x-forwarded-for", *l);
    }
    req.form(&[
        ("grant_type", "password"),
        ("username", "nobody@example.com"),
        ("password", "wrong-password-1"),
    ])
    .send()
    .await
    .expect("request")
    .status()
}

const BEHIND_PROXY: &str = r#"
[server]
trusted_proxies = ["127.0.0.1/32", "10.0.0.0/8"]
[rate_limits]
login_per_ip = "2/1h"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_forwarded_for_line_does_not_escape_the_limit() {
    let app = TestApp::spawn_with(Backend::Sqlite, BEHIND_PROXY).await;
    // The client forges a first line each time; the proxy (10.0.0.5, trusted)
    // appends its own line naming the real client, 203.0.113.7.
    for i in 0..2 {
        let forged = format!("198.51.100.{i}");
        assert_eq!(
            grant_with_forwarded(&app, &[&forged, "203.0.113.7, 10.0.0.5"]).await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        grant_with_forwarded(&app, &["198.51.100.99", "203.0.113.7, 10.0.0.5"]).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the client is the rightmost untrusted address of all lines"
    );
    // Another real client behind the same proxy has its own budget.
    assert_eq!(
        grant_with_forwarded(&app, &["203.0.113.8"]).await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_clients_are_limited_by_their_64() {
    let app = TestApp::spawn_with(Backend::Sqlite, BEHIND_PROXY).await;
    // One subscriber owns the whole /64: new addresses buy nothing.
    for a in ["2001:db8:1:2::1", "2001:db8:1:2::ffff"] {
        assert_eq!(
            grant_with_forwarded(&app, &[a]).await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        grant_with_forwarded(&app, &["2001:db8:1:2:abcd::9"]).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The next /64 is someone else.
    assert_eq!(
        grant_with_forwarded(&app, &["2001:db8:1:3::1"]).await,
        StatusCode::BAD_REQUEST
    );
}

async fn activate(app: &TestApp, email: &str, code: &str) -> reqwest::Response {
    app.post_json("/account/activate", &json!({"email": email, "code": code}))
        .await
}

fn wrong(code: &str, i: usize) -> String {
    // Six digits that are not `code`.
    let n: u32 = code.parse().expect("digits");
    format!("{:06}", (n + 1 + i as u32) % 1_000_000)
}

async fn an_activation_code_dies_after_five_wrong_tries(backend: Backend) {
    let app = TestApp::spawn_with_mail(
        backend,
        "[rate_limits]\nactivation_per_account = \"100/1m\"\nresend_per_email = \"100/1m\"\n",
    )
    .await;
    let mail = app.mail.as_ref().expect("sink");
    app.register("tries@example.com", json!({})).await;
    let (text, _) = mail.wait_for("tries@example.com", "activation code").await;
    let code = code_in(&text);
    for i in 0..5 {
        assert_error(
            activate(&app, "tries@example.com", &wrong(&code, i)).await,
            StatusCode::BAD_REQUEST,
            "invalid_code",
        )
        .await;
    }
    // Five wrong tries: the right code no longer works.
    assert_error(
        activate(&app, "tries@example.com", &code).await,
        StatusCode::BAD_REQUEST,
        "invalid_code",
    )
    .await;
    // A new code does.
    let r = app
        .post_json(
            "/account/activate/resend",
            &json!({"email": "tries@example.com"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    mail.wait_count(2).await;
    let (text, _) = mail.wait_for("tries@example.com", "activation code").await;
    let fresh = code_in(&text);
    assert_eq!(
        activate(&app, "tries@example.com", &fresh).await.status(),
        StatusCode::OK
    );
}
both!(an_activation_code_dies_after_five_wrong_tries);

async fn activation_guesses_are_limited_per_client_across_accounts(backend: Backend) {
    let app = TestApp::spawn_with(backend, "[rate_limits]\nactivation_per_ip = \"3/1h\"\n").await;
    for i in 0..4 {
        let email = format!("farm{i}@example.com");
        app.register(&email, json!({})).await;
        let r = activate(&app, &email, "000000").await;
        if i < 3 {
            assert_error(r, StatusCode::BAD_REQUEST, "invalid_code").await;
        } else {
            assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
        }
    }
}
both!(activation_guesses_are_limited_per_client_across_accounts);

async fn concurrent_resends_leave_one_live_code(backend: Backend) {
    let app = TestApp::spawn_with(backend, "[rate_limits]\nresend_per_email = \"1000/1m\"\n").await;
    let r = app.register("twice@example.com", json!({})).await;
    let b: Value = r.json().await.expect("json");
    let id = uuid::Uuid::parse_str(b["user"]["id"].as_str().expect("id")).expect("uuid");
    let mut handles = Vec::new();
    for _ in 0..16 {
        let (http, url) = (app.http.clone(), app.url("/account/activate/resend"));
        handles.push(tokio::spawn(async move {
            http.post(url)
                .json(&json!({"email": "twice@example.com"}))
                .send()
                .await
                .expect("request")
                .status()
        }));
    }
    for h in handles {
        assert_eq!(h.await.expect("task"), StatusCode::ACCEPTED);
    }
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let codes = gatehouse::entity::one_time_codes::Entity::find()
        .filter(gatehouse::entity::one_time_codes::Column::UserId.eq(id))
        .count(&app.state.db)
        .await
        .expect("count");
    assert_eq!(codes, 1, "one live code per account");
}
both!(concurrent_resends_leave_one_live_code);

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// 100,000 distinct emails from one client: the answers turn 429 and the
/// limiter's memory stays bounded (at most `MAX_KEYS` keys, ~16 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_distinct_emails_is_refused_and_memory_stays_bounded() {
    let app = std::sync::Arc::new(
        TestApp::spawn_with(
            Backend::Sqlite,
            "[rate_limits]\nunauthenticated_per_ip = \"1000/1m\"\nresend_per_email = \"3/10m\"\n",
        )
        .await,
    );
    let before = rss_kib();
    let started = std::time::Instant::now();
    const TOTAL: usize = 100_000;
    const WORKERS: usize = 32;
    let mut handles = Vec::new();
    for w in 0..WORKERS {
        let app = app.clone();
        handles.push(tokio::spawn(async move {
            let (mut ok, mut limited) = (0usize, 0usize);
            for i in (w..TOTAL).step_by(WORKERS) {
                let r = app
                    .post_json(
                        "/account/activate/resend",
                        &json!({"email": format!("flood{i}@example.com")}),
                    )
                    .await;
                match r.status() {
                    StatusCode::ACCEPTED => ok += 1,
                    StatusCode::TOO_MANY_REQUESTS => limited += 1,
                    s => panic!("unexpected {s}"),
                }
            }
            (ok, limited)
        }));
    }
    let (mut ok, mut limited) = (0, 0);
    for h in handles {
        let (o, l) = h.await.expect("worker");
        ok += o;
        limited += l;
    }
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    // The burst of 1,000, plus what refills at 1,000 a minute meanwhile.
    let allowed = 1_000 + (started.elapsed().as_secs_f64() * 1_000.0 / 60.0).ceil() as usize + 1;
    assert!(ok <= allowed, "{ok} accepted of {allowed} allowed");
    assert_eq!(ok + limited, TOTAL);
    let keys = app.state.limits.keys_in_memory();
    assert!(keys <= gatehouse::limits::MAX_KEYS, "{keys} limiter keys");
    assert!(grown_mib < 64, "RSS grew {grown_mib} MiB");
}

async fn one_refusing_recipient_does_not_jam_the_mail(backend: Backend) {
    let (sink, refused) = crate::helpers::MailSink::refusing("bounce@example.com");
    let extra = format!(
        "[mail]\ntransport = \"smtp\"\nsmtp_url = \"smtp://127.0.0.1:{}\"\nmax_attempts = 8\n",
        sink.port
    );
    let db = std::sync::Arc::new(crate::helpers::TestDb::new(backend).await);
    let app = TestApp::spawn_on(db, &extra, Some(sink)).await;
    let mail = app.mail.as_ref().expect("sink");
    assert_eq!(
        app.register("bounce@example.com", json!({})).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.register("fine@example.com", json!({})).await.status(),
        StatusCode::CREATED
    );
    // The next message goes out at once (wait_for gives up after 10 s; a
    // queue retrying the bounce first would take a minute).
    mail.wait_for("fine@example.com", "activation code").await;
    // 550 is final: asked once, not retried.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(refused.load(std::sync::atomic::Ordering::Relaxed), 1);
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.contains("gatehouse_mail_queue_depth"));
}
both!(one_refusing_recipient_does_not_jam_the_mail);

async fn accounts_stored_before_canonical_keys_are_found_after_the_upgrade(backend: Backend) {
    use migration::MigratorTrait as _;
    use sea_orm::{ActiveModelTrait as _, IntoActiveModel as _};
    let db = std::sync::Arc::new(crate::helpers::TestDb::new(backend).await);
    // The schema as the previous release left it, and an account it wrote:
    // an address with the "ﬁ" ligature, keyed only lower-cased.
    {
        let conn = sea_orm::Database::connect(&db.url).await.expect("connect");
        migration::Migrator::up(&conn, Some(9))
            .await
            .expect("old schema");
        let now = gatehouse::clock::Clock::default().now();
        gatehouse::entity::users::Model {
            id: uuid::Uuid::new_v4(),
            email: "\u{FB01}ona@example.com".into(),
            email_normalized: "\u{FB01}ona@example.com".into(),
            username: None,
            username_normalized: None,
            password_hash: "!".into(),
            given_name: None,
            family_name: None,
            phone_number: None,
            email_verified: true,
            activated: true,
            disabled: false,
            roles: String::new(),
            created_at: now,
            updated_at: now,
        }
        .into_active_model()
        .insert(&conn)
        .await
        .expect("old row");
        conn.close().await.expect("close");
    }
    // The new release migrates at start.
    let app = TestApp::spawn_on(db, "", None).await;
    assert!(
        gatehouse::accounts::store::find_by_email(&app.state.db, "fiona@example.com")
            .await
            .expect("query")
            .is_some(),
        "found under its canonical form"
    );
    assert_error(
        app.register("fiona@example.com", json!({})).await,
        StatusCode::CONFLICT,
        "email_taken",
    )
    .await;
}
both!(accounts_stored_before_canonical_keys_are_found_after_the_upgrade);

async fn a_strangers_wrong_codes_do_not_lock_the_owner_out(backend: Backend) {
    let app = TestApp::spawn_with_mail(
        backend,
        "[server]\ntrusted_proxies = [\"127.0.0.1/32\"]\n[rate_limits]\nactivation_per_account = \"3/10m\"\n",
    )
    .await;
    let mail = app.mail.as_ref().expect("sink");
    app.register("owner@example.com", json!({})).await;
    let (text, _) = mail.wait_for("owner@example.com", "activation code").await;
    let code = code_in(&text);
    let from = |ip: &'static str, code: String| {
        let (http, url) = (app.http.clone(), app.url("/account/activate"));
        async move {
            http.post(url)
                .header("x-forwarded-for", ip)
                .json(&json!({"email": "owner@example.com", "code": code}))
                .send()
                .await
                .expect("request")
        }
    };
    for i in 0..3 {
        let r = from("203.0.113.66", wrong(&code, i)).await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_code").await;
    }
    let r = from("203.0.113.66", wrong(&code, 3)).await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // The owner, elsewhere, with the right code.
    let r = from("192.0.2.20", code).await;
    assert_eq!(r.status(), StatusCode::OK);
}
both!(a_strangers_wrong_codes_do_not_lock_the_owner_out);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbled_or_ported_forwarded_hops_never_borrow_the_proxys_budget() {
    let app = TestApp::spawn_with(Backend::Sqlite, BEHIND_PROXY).await;
    // A proxy writing address:port: the client is the address.
    for _ in 0..2 {
        assert_eq!(
            grant_with_forwarded(&app, &["203.0.113.7:5555"]).await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        grant_with_forwarded(&app, &["203.0.113.7:6666"]).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the port is not part of the client"
    );
    // Garbage where an address should be is a client of its own, not the
    // proxy (whose budget stays whole for the clients it names).
    for _ in 0..2 {
        assert_eq!(
            grant_with_forwarded(&app, &["not-an-address"]).await,
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        grant_with_forwarded(&app, &["not-an-address"]).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        grant_with_forwarded(&app, &["198.51.100.23"]).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        grant_with_forwarded(&app, &["[2001:db8:9::1]:443"]).await,
        StatusCode::BAD_REQUEST
    );
}
