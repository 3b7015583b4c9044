//! Hot reload: token lifetimes change from the file without a restart; a
//! broken file keeps the last good settings; a ConfigMap-style symlink swap counts.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use crate::helpers::{Backend, TestApp, TestDb, metric, settings_toml};

/// `exp - iat` of a fresh access token.
async fn access_lifetime(app: &TestApp) -> i64 {
    let t = app.login("hot@example.com").await;
    let payload = t["access_token"]
        .as_str()
        .expect("at")
        .split('.')
        .nth(1)
        .expect("payload")
        .to_owned();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("b64"),
    )
    .expect("json");
    claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat")
}

/// Polls (up to 2 s) until new tokens live `secs`.
async fn wait_for_lifetime(app: &TestApp, secs: i64) -> bool {
    for _ in 0..20 {
        if access_lifetime(app).await == secs {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn spawn_watching(path: &Path, db: Arc<TestDb>) -> TestApp {
    let settings = gatehouse::config::Settings::load(Some(path)).expect("valid file");
    let app = TestApp::spawn_settings(db, settings, Some(path.to_path_buf()), None).await;
    app.activated_user("hot@example.com").await;
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_lifetimes_follow_the_file_and_a_broken_file_is_refused() {
    let db = Arc::new(TestDb::new(Backend::Sqlite).await);
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(&path, settings_toml(&db.url, "")).expect("write");
    let app = spawn_watching(&path, db.clone()).await;
    assert_eq!(access_lifetime(&app).await, 900);

    std::fs::write(
        &path,
        settings_toml(&db.url, "[tokens]\naccess_ttl = \"5m\"\n"),
    )
    .expect("write");
    assert!(
        wait_for_lifetime(&app, 300).await,
        "the new lifetime applies within 2 s, no restart"
    );

    let before = metric(
        &app.state.metrics.render(),
        "gatehouse_config_reloads_total",
        ("result", "error"),
    );
    std::fs::write(
        &path,
        settings_toml(&db.url, "[tokens]\naccess_ttl = \"3m\"\n").replace("\"3m\"", "\"soon\""),
    )
    .expect("write");
    for _ in 0..40 {
        if metric(
            &app.state.metrics.render(),
            "gatehouse_config_reloads_total",
            ("result", "error"),
        ) > before
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        metric(
            &app.state.metrics.render(),
            "gatehouse_config_reloads_total",
            ("result", "error")
        ) > before,
        "the refused reload is counted"
    );
    assert_eq!(
        access_lifetime(&app).await,
        300,
        "the last good settings keep serving"
    );

    // A cold key changing is logged, not applied; the hot ones still apply.
    std::fs::write(
        &path,
        settings_toml(
            &db.url,
            "[tokens]\naccess_ttl = \"2m\"\n[database]\nmax_connections = 3\n",
        ),
    )
    .expect("write");
    assert!(wait_for_lifetime(&app, 120).await);
    assert_eq!(app.state.live.get().database.max_connections, Some(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_symlink_swap_is_a_reload() {
    let db = Arc::new(TestDb::new(Backend::Sqlite).await);
    let dir = tempfile::tempdir().expect("dir");
    // The layout kubelet gives a ConfigMap volume.
    let v1 = dir.path().join("..2026_11_23_v1");
    std::fs::create_dir(&v1).expect("dir");
    std::fs::write(v1.join("gatehouse.toml"), settings_toml(&db.url, "")).expect("write");
    std::os::unix::fs::symlink("..2026_11_23_v1", dir.path().join("..data")).expect("symlink");
    std::os::unix::fs::symlink("..data/gatehouse.toml", dir.path().join("gatehouse.toml"))
        .expect("symlink");
    let path = dir.path().join("gatehouse.toml");
    let app = spawn_watching(&path, db.clone()).await;
    assert_eq!(access_lifetime(&app).await, 900);

    let v2 = dir.path().join("..2026_11_23_v2");
    std::fs::create_dir(&v2).expect("dir");
    std::fs::write(
        v2.join("gatehouse.toml"),
        settings_toml(&db.url, "[tokens]\naccess_ttl = \"7m\"\n"),
    )
    .expect("write");
    std::os::unix::fs::symlink("..2026_11_23_v2", dir.path().join("..data_tmp")).expect("symlink");
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).expect("atomic swap");
    std::fs::remove_dir_all(&v1).expect("old version removed");
    assert!(
        wait_for_lifetime(&app, 420).await,
        "the swapped ConfigMap applies"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_or_out_of_bounds_file_is_refused_and_the_running_values_stay() {
    let db = Arc::new(TestDb::new(Backend::Sqlite).await);
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(
        &path,
        settings_toml(&db.url, "[tokens]\naccess_ttl = \"5m\"\n"),
    )
    .expect("write");
    let app = spawn_watching(&path, db.clone()).await;
    assert_eq!(access_lifetime(&app).await, 300);
    // What a writer caught between truncate and write leaves behind.
    std::fs::write(&path, "").expect("truncate");
    assert!(!gatehouse::reload::reload(&path, &app.state.live));
    // A typo that would overflow or mean nothing.
    for bad in [
        "[tokens]\naccess_ttl = \"15y\"\n",
        "[tokens]\ndefault_scope = \"openid admin\"\n",
        "[rate_limits]\nlogin_per_ip = \"5/0s\"\n",
        "[rate_limits]\nlogin_per_ip = \"5/1000y\"\n",
    ] {
        std::fs::write(&path, settings_toml(&db.url, bad)).expect("write");
        assert!(
            !gatehouse::reload::reload(&path, &app.state.live),
            "refused: {bad}"
        );
    }
    assert_eq!(access_lifetime(&app).await, 300, "the running values stay");
}
