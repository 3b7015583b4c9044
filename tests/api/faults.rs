//! Faults: the database going away under load, a read-only SQLite file.
//! Each test counts rows after, to show nothing was half-written.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::helpers::{Backend, ChaosProxy, PASSWORD, TestApp, TestDb, assert_error};

async fn count(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("query")
        .expect("row");
    row.try_get_by_index::<i64>(0).expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set GATEHOUSE_TEST_DATABASE_URL and run with --include-ignored"]
async fn postgres_going_away_answers_503_then_recovers_with_nothing_half_written() {
    let db = Arc::new(TestDb::new(Backend::Postgres).await);
    let (host_port, name) = db
        .url
        .trim_start_matches("postgres://")
        .split_once('/')
        .expect("url");
    let host_port = host_port.rsplit('@').next().expect("host");
    let target = tokio::net::lookup_host(host_port)
        .await
        .expect("resolve")
        .next()
        .expect("addr");
    let proxy = ChaosProxy::start(target).await;
    let creds = db
        .url
        .trim_start_matches("postgres://")
        .split('@')
        .next()
        .filter(|_| db.url.contains('@'));
    let via_proxy = match creds {
        Some(c) => format!("postgres://{c}@127.0.0.1:{}/{name}", proxy.port),
        None => format!("postgres://127.0.0.1:{}/{name}", proxy.port),
    };
    let settings = crate::helpers::settings(&via_proxy, "");
    let app = TestApp::spawn_settings(db.clone(), settings, None, None).await;
    app.activated_user("steady@example.com").await;

    let mut outcomes = Vec::new();
    for i in 0..12 {
        if i == 4 {
            proxy.cut().await;
        }
        if i == 8 {
            proxy.restore();
            // Recovers by itself: readiness comes back without a restart.
            let mut ready = false;
            for _ in 0..100 {
                if app.get("/readyz").await.status() == StatusCode::OK {
                    ready = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(ready, "the server recovers by itself");
        }
        let email = format!("load{i}@example.com");
        let r = app.register(&email, json!({})).await;
        let status = r.status();
        let body: Value = r
            .json()
            .await
            .expect("json body, even while the database is down");
        if status != StatusCode::CREATED {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            assert_eq!(body["error"], "service_unavailable");
        }
        let login = app
            .password_grant("steady@example.com", PASSWORD)
            .await
            .status();
        assert!(
            login == StatusCode::OK || login == StatusCode::SERVICE_UNAVAILABLE,
            "{login}"
        );
        outcomes.push((email, status, login));
    }
    assert!(
        outcomes[4..8]
            .iter()
            .all(|(_, s, l)| *s == StatusCode::SERVICE_UNAVAILABLE
                && *l == StatusCode::SERVICE_UNAVAILABLE)
    );
    assert!(
        outcomes[8..]
            .iter()
            .all(|(_, s, l)| *s == StatusCode::CREATED && *l == StatusCode::OK)
    );

    // Count rows directly (not through the proxy): every user has its code,
    // none answered 503 exists, every refresh token belongs to a user.
    let direct = sea_orm::Database::connect(&db.url)
        .await
        .expect("direct connection");
    for (email, status, _) in &outcomes {
        let users = count(
            &direct,
            &format!("SELECT COUNT(*) FROM users WHERE email_normalized = '{email}'"),
        )
        .await;
        let codes = count(
            &direct,
            &format!("SELECT COUNT(*) FROM one_time_codes c JOIN users u ON u.id = c.user_id WHERE u.email_normalized = '{email}'"),
        )
        .await;
        let expected = i64::from(*status == StatusCode::CREATED);
        assert_eq!(
            (users, codes),
            (expected, expected),
            "{email} answered {status}"
        );
    }
    let logins_ok = outcomes
        .iter()
        .filter(|(_, _, l)| *l == StatusCode::OK)
        .count() as i64;
    let families = count(
        &direct,
        "SELECT COUNT(DISTINCT family_id) FROM refresh_tokens",
    )
    .await;
    assert_eq!(
        families, logins_ok,
        "one token family per successful login, none per failed one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_sqlite_file_serves_reads_and_refuses_writes_clearly() {
    let db = Arc::new(TestDb::new(Backend::Sqlite).await);
    let app = TestApp::spawn_on(db.clone(), "", None).await;
    app.activated_user("ro@example.com").await;
    let kid = crate::foundation::served_keys(&app).await[0].0.clone();
    let tokens = app.login("ro@example.com").await;
    app.stop().await;

    let ro_url = db.url.replace("mode=rwc", "mode=ro");
    let settings = crate::helpers::settings(&ro_url, "");
    let app = TestApp::spawn_settings(db.clone(), settings, None, None).await;
    assert_eq!(
        crate::foundation::served_keys(&app).await[0].0,
        kid,
        "reads work"
    );
    let r = app.register("new@example.com", json!({})).await;
    assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    let r = app.password_grant("ro@example.com", PASSWORD).await;
    assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    // The bearer check reads; a refresh would write.
    let access = tokens["access_token"].as_str().expect("access");
    let me = app.get_bearer("/account/me", access).await;
    assert_eq!(me.status(), StatusCode::OK);
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let r = app.refresh(refresh).await;
    assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    app.stop().await;

    // Writable again: nothing was lost or corrupted.
    let app = TestApp::spawn_on(db.clone(), "", None).await;
    let check = count(&app.state.db, "SELECT COUNT(*) FROM users").await;
    assert_eq!(check, 1);
    let ok = app
        .state
        .db
        .query_one(Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "PRAGMA integrity_check",
        ))
        .await;
    let ok: String = ok
        .expect("query")
        .expect("row")
        .try_get_by_index(0)
        .expect("text");
    assert_eq!(ok, "ok");
    app.login("ro@example.com").await;
    assert_eq!(app.refresh(refresh).await.status(), StatusCode::OK);
}

/// SQLite: another process holding the write lock (a backup, an operator's
/// `sqlite3` session) makes refreshes wait for it rather than fail, and the
/// server keeps answering everything else meanwhile. The refresh runs its
/// SQL on the request's thread without waiting; a busy database moves it to
/// a blocking thread that waits as the pool would.
// One worker thread: a refresh that waited for the lock on it would stall
// every other request.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_locked_sqlite_file_delays_refreshes_and_the_server_keeps_answering() {
    let app = Arc::new(TestApp::spawn(Backend::Sqlite).await);
    app.activated_user("lock@example.com").await;
    let mut refresh_tokens = Vec::new();
    let mut access = String::new();
    for _ in 0..4 {
        let t = app.login("lock@example.com").await;
        refresh_tokens.push(t["refresh_token"].as_str().expect("refresh").to_owned());
        access = t["access_token"].as_str().expect("access").to_owned();
    }

    // Another process takes the write lock and holds it until told.
    let path = app
        .db
        .url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .expect("path")
        .to_owned();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let locker = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch("BEGIN IMMEDIATE").expect("lock");
        locked_tx.send(()).expect("send");
        release_rx.recv().expect("release");
        conn.execute_batch("COMMIT").expect("unlock");
    });
    locked_rx.recv().expect("locked");

    let refreshes: Vec<_> = refresh_tokens
        .iter()
        .map(|t| {
            let (app, t) = (app.clone(), t.clone());
            tokio::spawn(async move { app.refresh(&t).await })
        })
        .collect();
    // Give them time to reach the database. A std sleep: this thread is not
    // a worker, and tokio's timers would stall with a stalled worker.
    std::thread::sleep(Duration::from_millis(200));

    // The lock is still held: reads and the rest of the server answer. A
    // request thread waiting for the lock would hold them for the busy
    // timeout (5 s). The check runs on a thread of its own with a socket
    // timeout, since a stalled worker would stall tokio's timers too; the
    // bound is a liveness check, not a measurement.
    for (path, bearer) in [
        ("/account/me", Some(access.clone())),
        ("/.well-known/jwks.json", None),
    ] {
        let addr = app.base.trim_start_matches("http://").to_owned();
        let status = std::thread::spawn(move || get_status_within(&addr, path, bearer.as_deref()))
            .join()
            .expect("probe thread");
        assert_eq!(
            status.as_deref(),
            Some("200"),
            "{path} while another process held the write lock"
        );
    }
    assert!(
        refreshes.iter().all(|r| !r.is_finished()),
        "a refresh answered while another process held the write lock"
    );

    release_tx.send(()).expect("release");
    locker.join().expect("locker");
    for r in refreshes {
        let r = r.await.expect("task");
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.expect("json");
        let next = body["refresh_token"].as_str().expect("refresh");
        assert_eq!(app.refresh(next).await.status(), StatusCode::OK);
    }
    let rows = count(&app.state.db, "SELECT COUNT(*) FROM refresh_tokens").await;
    assert_eq!(rows, 12, "4 logins, each rotated twice");
}

/// The status code of `GET path` on a fresh connection, or `None` when no
/// answer came within 3 s.
fn get_status_within(addr: &str, path: &str, bearer: Option<&str>) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    Some(String::from_utf8_lossy(&head[9..12]).into_owned())
}
