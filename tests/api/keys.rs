//! Key rotation end to end, and private keys encrypted at rest.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};

use crate::both;
use crate::foundation::served_keys;
use crate::helpers::{Backend, TestApp, TestDb};

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("kid")
}

async fn rotation_publishes_first_signs_later_and_retires_the_old_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.activated_user("rot@example.com").await;
    let old_token = app.login("rot@example.com").await["access_token"]
        .as_str()
        .expect("at")
        .to_owned();
    let old_kid = kid_of(&old_token);

    let next = app
        .state
        .keys
        .rotate(
            app.state.clock.now(),
            Duration::from_secs(600),
            Duration::from_secs(900),
        )
        .await
        .expect("rotate");
    app.state
        .keys
        .reload(app.state.clock.now(), Duration::from_secs(900))
        .await
        .expect("reload");
    let kids: Vec<String> = served_keys(&app)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(kids.len(), 2, "the next key is published at once");
    assert!(kids.contains(&next.kid) && kids.contains(&old_kid));
    let t = app.login("rot@example.com").await["access_token"]
        .as_str()
        .expect("at")
        .to_owned();
    assert_eq!(
        kid_of(&t),
        old_kid,
        "the old key signs until jwks_max_age has passed"
    );

    // jwks_max_age has passed, but a replica reloading keys every 30 s may
    // have published the key up to 30 s late: not yet.
    app.advance(Duration::from_secs(601));
    let t = app.login("rot@example.com").await["access_token"]
        .as_str()
        .expect("at")
        .to_owned();
    assert_eq!(kid_of(&t), old_kid, "every replica's JWKS must age first");
    app.advance(Duration::from_secs(30));
    let new_token = app.login("rot@example.com").await["access_token"]
        .as_str()
        .expect("at")
        .to_owned();
    assert_eq!(
        kid_of(&new_token),
        next.kid,
        "the new key signs once active"
    );
    // A token from the old key still works until it expires.
    app.advance(Duration::from_secs(200));
    assert_eq!(
        app.get_bearer("/oauth/userinfo", &old_token).await.status(),
        StatusCode::OK
    );

    // Past the longest token lifetime the old key leaves the JWKS.
    app.advance(Duration::from_secs(16 * 60));
    app.state
        .keys
        .reload(app.state.clock.now(), Duration::from_secs(900))
        .await
        .expect("reload");
    let kids: Vec<String> = served_keys(&app)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(kids, vec![next.kid.clone()]);
    assert_eq!(
        app.get_bearer("/oauth/userinfo", &new_token).await.status(),
        StatusCode::UNAUTHORIZED,
        "expired by now"
    );
}
both!(rotation_publishes_first_signs_later_and_retires_the_old_key);

async fn private_keys_can_be_encrypted_at_rest(backend: Backend) {
    let key = "[keys]\nencryption_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n";
    let db = Arc::new(TestDb::new(backend).await);
    let app = TestApp::spawn_on(db.clone(), key, None).await;
    let kid = served_keys(&app).await[0].0.clone();
    let conn = app.state.db.clone();
    let backend_kind = conn.get_database_backend();
    let rows = conn
        .query_all(Statement::from_string(
            backend_kind,
            "SELECT private_key FROM signing_keys",
        ))
        .await
        .expect("query");
    for row in rows {
        let pk: String = row.try_get("", "private_key").expect("column");
        assert!(
            pk.starts_with("enc:v1:") && !pk.contains("PRIVATE KEY"),
            "stored encrypted"
        );
    }
    let secret = conn
        .query_one(Statement::from_string(
            backend_kind,
            "SELECT value FROM server_secrets",
        ))
        .await
        .expect("query")
        .expect("row");
    assert!(
        secret
            .try_get::<String>("", "value")
            .expect("column")
            .starts_with("enc:v1:")
    );
    app.stop().await;

    // The same key opens them again; another key refuses to start, clearly.
    let again = TestApp::spawn_on(db.clone(), key, None).await;
    assert_eq!(served_keys(&again).await[0].0, kid);
    again.stop().await;
    let wrong = crate::helpers::settings(
        &db.url,
        "[keys]\nencryption_key = \"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=\"\n",
    );
    let err = gatehouse::server::Application::build(wrong, None)
        .await
        .err()
        .expect("refuses to start");
    assert!(format!("{err:#}").contains("decrypt"), "{err:#}");
}
both!(private_keys_can_be_encrypted_at_rest);

/// The stored private keys and server secret, as they sit in the database.
async fn stored_secrets(app: &TestApp) -> Vec<String> {
    let conn = app.state.db.clone();
    let kind = conn.get_database_backend();
    let mut out = Vec::new();
    for sql in [
        "SELECT private_key AS v FROM signing_keys",
        "SELECT value AS v FROM server_secrets",
    ] {
        for row in conn
            .query_all(Statement::from_string(kind, sql))
            .await
            .expect("query")
        {
            out.push(row.try_get::<String>("", "v").expect("column"));
        }
    }
    out
}

async fn turning_encryption_on_later_seals_what_was_stored_in_plain_text(backend: Backend) {
    let db = Arc::new(TestDb::new(backend).await);
    let plain = TestApp::spawn_on(db.clone(), "", None).await;
    plain.activated_user("seal@example.com").await;
    let t = plain.login("seal@example.com").await;
    let kid = served_keys(&plain).await[0].0.clone();
    assert!(
        stored_secrets(&plain)
            .await
            .iter()
            .all(|v| !v.starts_with("enc:v1:"))
    );
    plain.stop().await;

    let key = "[keys]\nencryption_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n";
    let sealed = TestApp::spawn_on(db.clone(), key, None).await;
    let stored = stored_secrets(&sealed).await;
    assert!(!stored.is_empty());
    for v in &stored {
        assert!(
            v.starts_with("enc:v1:") && !v.contains("PRIVATE KEY"),
            "sealed at start"
        );
    }
    // Same key, same server secret: what was issued before still works.
    assert_eq!(served_keys(&sealed).await[0].0, kid);
    let r = sealed
        .refresh(t["refresh_token"].as_str().expect("refresh"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}
both!(turning_encryption_on_later_seals_what_was_stored_in_plain_text);

async fn a_shorter_token_lifetime_never_unpublishes_a_key_whose_tokens_live(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.activated_user("shrink@example.com").await;
    let old_kid = served_keys(&app).await[0].0.clone();
    let now = app.state.clock.now();
    app.state
        .keys
        .rotate(now, Duration::from_secs(600), Duration::from_secs(900))
        .await
        .expect("rotate");
    // The last token of the old key, with the 15-minute lifetime of then.
    app.advance(Duration::from_secs(601));
    let last = app.login("shrink@example.com").await["access_token"]
        .as_str()
        .expect("at")
        .to_owned();
    // The new key takes over; then the operator shortens lifetimes to 5 min.
    app.advance(Duration::from_secs(30 + 420));
    app.state
        .keys
        .reload(app.state.clock.now(), Duration::from_secs(300))
        .await
        .expect("reload");
    let kids: Vec<String> = served_keys(&app)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(
        kids.contains(&old_kid),
        "its tokens are live for 7 more minutes"
    );
    assert_eq!(
        app.get_bearer("/oauth/userinfo", &last).await.status(),
        StatusCode::OK
    );
}
both!(a_shorter_token_lifetime_never_unpublishes_a_key_whose_tokens_live);
