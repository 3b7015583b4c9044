//! Token and session integrity: a revocation that has returned cannot be
//! outrun by rotations racing it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::StatusCode;
use serde_json::Value;

use crate::both;
use crate::helpers::{Backend, PASSWORD, TestApp};

/// An attacker with a stolen refresh token rotates it as fast as it can;
/// returns the last token it holds once told to stop (or once refused).
async fn rotate_until_refused(
    app: Arc<TestApp>,
    mut token: String,
    stop: Arc<AtomicBool>,
) -> String {
    loop {
        let r = app.refresh(&token).await;
        if r.status() != StatusCode::OK {
            return token;
        }
        let t: Value = r.json().await.expect("json");
        token = t["refresh_token"].as_str().expect("refresh").to_owned();
        if stop.load(Ordering::Relaxed) {
            return token;
        }
    }
}

/// One trial: a rotation loop races `revoke`; afterwards nothing the
/// attacker holds may work. Returns whether the attacker survived.
async fn attacker_survives<F, Fut>(app: &Arc<TestApp>, refresh: String, revoke: F) -> bool
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = tokio::spawn(rotate_until_refused(app.clone(), refresh, stop.clone()));
    // Let the loop get going, then revoke while it runs.
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    revoke().await;
    stop.store(true, Ordering::Relaxed);
    let last = attacker.await.expect("attacker task");
    app.refresh(&last).await.status() == StatusCode::OK
}

async fn a_family_revocation_cannot_be_outrun_by_rotations(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    app.activated_user("race@example.com").await;
    let trials = if backend == Backend::Postgres {
        200
    } else {
        40
    };
    let mut survived = 0;
    for _ in 0..trials {
        let t = app.login("race@example.com").await;
        let stolen = t["refresh_token"].as_str().expect("refresh").to_owned();
        let owners = stolen.clone();
        let a = app.clone();
        // The owner logs out (RFC 7009) with the token they still hold.
        let revoke = || async move {
            let r = a
                .post_form("/oauth/revoke", &[("token", owners.as_str())])
                .await;
            assert_eq!(r.status(), StatusCode::OK);
        };
        if attacker_survives(&app, stolen, revoke).await {
            survived += 1;
        }
    }
    assert_eq!(
        survived, 0,
        "{survived} of {trials} stolen families outlived the logout"
    );
}
both!(a_family_revocation_cannot_be_outrun_by_rotations);

async fn a_password_change_cannot_be_outrun_by_rotations(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    app.activated_user("race2@example.com").await;
    let trials = if backend == Backend::Postgres { 60 } else { 15 };
    let mut survived = 0;
    let mut password = PASSWORD.to_owned();
    for i in 0..trials {
        let stolen = app.login_with("race2@example.com", &password).await;
        let owner = app.login_with("race2@example.com", &password).await;
        let access = owner["access_token"].as_str().expect("access").to_owned();
        let next = format!("vivid-Meadow-lantern-{}", 100 + i);
        let (a, current) = (app.clone(), password.clone());
        let new = next.clone();
        // "Log out everywhere else": the owner changes the password.
        let revoke = || async move {
            let r = a
                .http
                .post(a.url("/account/password"))
                .bearer_auth(&access)
                .json(&serde_json::json!({"current_password": current, "new_password": new}))
                .send()
                .await
                .expect("request");
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
        };
        let stolen = stolen["refresh_token"]
            .as_str()
            .expect("refresh")
            .to_owned();
        if attacker_survives(&app, stolen, revoke).await {
            survived += 1;
        }
        password = next;
    }
    assert_eq!(
        survived, 0,
        "{survived} of {trials} stolen sessions outlived the password change"
    );
}
both!(a_password_change_cannot_be_outrun_by_rotations);

/// Deletes every Redis key of one deployment: what a Redis restart
/// without persistence, a FLUSHALL or a failover to an empty replica does
/// to it (other tests' prefixes are left alone).
async fn forget_everything(prefix: &str) {
    let client = redis::Client::open(crate::helpers::redis_url()).expect("redis url");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut c)
        .await
        .expect("keys");
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut c)
            .await
            .expect("del");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL and Redis: set GATEHOUSE_TEST_DATABASE_URL and GATEHOUSE_TEST_REDIS_URL and run with --include-ignored"]
async fn a_revoked_access_token_stays_revoked_when_redis_forgets() {
    let prefix = format!("gh-test-{}", uuid::Uuid::new_v4().simple());
    let extra = format!(
        "[redis]\nurl = \"{}\"\nprefix = \"{prefix}\"\n",
        crate::helpers::redis_url()
    );
    let app = TestApp::spawn_with(Backend::Postgres, &extra).await;
    app.activated_user("forget@example.com").await;
    let t = app.login("forget@example.com").await;
    let access = t["access_token"].as_str().expect("access");
    let r = app
        .post_form(
            "/oauth/revoke",
            &[("token", access), ("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.get_bearer("/account/me", access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    forget_everything(&prefix).await;
    assert_eq!(
        app.get_bearer("/account/me", access).await.status(),
        StatusCode::UNAUTHORIZED,
        "Redis forgot, the database did not"
    );
}

async fn replicas_without_redis_share_revocations(backend: Backend) {
    let db = Arc::new(crate::helpers::TestDb::new(backend).await);
    let a = TestApp::spawn_on(db.clone(), "", None).await;
    let b = TestApp::spawn_on(db.clone(), "", None).await;
    a.activated_user("two@example.com").await;
    let t = a.login("two@example.com").await;
    let access = t["access_token"].as_str().expect("access");
    assert_eq!(
        b.get_bearer("/account/me", access).await.status(),
        StatusCode::OK
    );
    let r = a.post_form("/oauth/revoke", &[("token", access)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    for replica in [&a, &b] {
        assert_eq!(
            replica.get_bearer("/account/me", access).await.status(),
            StatusCode::UNAUTHORIZED,
            "revoked at A, refused everywhere"
        );
    }
}
both!(replicas_without_redis_share_revocations);

fn refresh_of(v: &Value) -> String {
    v["refresh_token"].as_str().expect("refresh").to_owned()
}

async fn sessions_end_at_their_maximum_lifetime(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        "[tokens]\nrefresh_ttl = \"7d\"\nsession_max_lifetime = \"30d\"\n",
    )
    .await;
    app.activated_user("long@example.com").await;
    let mut token = refresh_of(&app.login("long@example.com").await);
    // Active every six days: each refresh is within the refresh lifetime.
    for _ in 0..4 {
        app.advance(std::time::Duration::from_secs(6 * 24 * 3600));
        let r = app.refresh(&token).await;
        assert_eq!(r.status(), StatusCode::OK);
        token = refresh_of(&r.json().await.expect("json"));
    }
    // Day 30 and a bit: however active, the session is over.
    app.advance(std::time::Duration::from_secs(6 * 24 * 3600 + 60));
    let r = app.refresh(&token).await;
    crate::helpers::assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
}
both!(sessions_end_at_their_maximum_lifetime);

async fn the_grace_answer_is_only_for_the_live_tip_and_its_own_client(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        "[[clients]]\nid = \"gatehouse\"\ngrant_types = [\"password\", \"refresh_token\"]\n[[clients]]\nid = \"other\"\ngrant_types = [\"password\", \"refresh_token\"]\n",
    )
    .await;
    app.activated_user("grace@example.com").await;

    // A retry with the previous token gets the same child (FAPI 2.0's retry).
    let r0 = refresh_of(&app.login("grace@example.com").await);
    let r = app.refresh(&r0).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r1 = refresh_of(&r.json().await.expect("json"));
    let r = app.refresh(&r0).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(refresh_of(&r.json().await.expect("json")), r1);

    // Another client replaying it within the grace window: refused.
    let r = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "other"),
                ("refresh_token", r0.as_str()),
            ],
        )
        .await;
    crate::helpers::assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // Once the child was rotated, the grandparent's replay is reuse: refused,
    // and the family dies.
    let r = app.refresh(&r1).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r2 = refresh_of(&r.json().await.expect("json"));
    let r = app.refresh(&r0).await;
    crate::helpers::assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_ne!(
        app.refresh(&r2).await.status(),
        StatusCode::OK,
        "family revoked"
    );

    // A revoked family gets no grace answer either.
    let s0 = refresh_of(&app.login("grace@example.com").await);
    let r = app.refresh(&s0).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post_form("/oauth/revoke", &[("token", s0.as_str())])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.refresh(&s0).await;
    crate::helpers::assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
}
both!(the_grace_answer_is_only_for_the_live_tip_and_its_own_client);

async fn a_client_revokes_only_its_own_tokens(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        "[[clients]]\nid = \"spa\"\ngrant_types = [\"password\", \"refresh_token\"]\n[[clients]]\nid = \"other\"\ngrant_types = [\"password\", \"refresh_token\"]\n",
    )
    .await;
    app.activated_user("mine@example.com").await;
    let r = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("client_id", "spa"),
                ("username", "mine@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    let t: Value = r.json().await.expect("json");
    let access = t["access_token"].as_str().expect("access");
    let refresh = refresh_of(&t);
    for token in [access, refresh.as_str()] {
        let r = app
            .post_form("/oauth/revoke", &[("token", token), ("client_id", "other")])
            .await;
        assert_eq!(r.status(), StatusCode::OK, "RFC 7009: 200 all the same");
    }
    assert_eq!(
        app.get_bearer("/account/me", access).await.status(),
        StatusCode::OK
    );
    let r = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "spa"),
                ("refresh_token", refresh.as_str()),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "another client could not end the session"
    );
    // Its own client can.
    let r = app
        .post_form("/oauth/revoke", &[("token", access), ("client_id", "spa")])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.get_bearer("/account/me", access).await.status(),
        StatusCode::UNAUTHORIZED
    );
}
both!(a_client_revokes_only_its_own_tokens);

async fn mail_a_reset_link(app: &TestApp, email: &str) -> String {
    let r = app
        .post_json(
            "/account/password/forgot",
            &serde_json::json!({"email": email}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let (text, _) = app
        .mail
        .as_ref()
        .expect("sink")
        .wait_for(email, "token=")
        .await;
    crate::email::reset_token(&text)
}

async fn reset_links_die_with_the_password_and_never_serve_a_disabled_account(backend: Backend) {
    let app = TestApp::spawn_with_mail(backend, "").await;
    app.activated_user("links@example.com").await;
    let token = mail_a_reset_link(&app, "links@example.com").await;

    // The owner changes the password: the link mailed before dies.
    let t = app.login("links@example.com").await;
    let access = t["access_token"].as_str().expect("access");
    let r = app
        .http
        .post(app.url("/account/password"))
        .bearer_auth(access)
        .json(&serde_json::json!({"current_password": PASSWORD, "new_password": "quiet-Harbor-compass-77"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .post_json(
            "/account/password/reset",
            &serde_json::json!({"token": token, "password": "bright-Canyon-pillar-31"}),
        )
        .await;
    crate::helpers::assert_error(r, StatusCode::BAD_REQUEST, "invalid_token").await;

    // A link mailed, then the account disabled: the link does not take it back.
    app.activated_user("off@example.com").await;
    let token = mail_a_reset_link(&app, "off@example.com").await;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    gatehouse::entity::users::Entity::update_many()
        .col_expr(
            gatehouse::entity::users::Column::Disabled,
            Expr::value(true),
        )
        .filter(gatehouse::entity::users::Column::EmailNormalized.eq("off@example.com"))
        .exec(&app.state.db)
        .await
        .expect("disable");
    let r = app
        .post_json(
            "/account/password/reset",
            &serde_json::json!({"token": token, "password": "bright-Canyon-pillar-31"}),
        )
        .await;
    crate::helpers::assert_error(r, StatusCode::BAD_REQUEST, "invalid_token").await;
}
both!(reset_links_die_with_the_password_and_never_serve_a_disabled_account);

async fn a_rehash_never_overwrites_a_password_changed_meanwhile(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.activated_user("rehash@example.com").await;
    let id = uuid::Uuid::parse_str(&id).expect("uuid");
    let db = &app.state.db;
    let user = gatehouse::accounts::store::find_by_id(db, id)
        .await
        .expect("query")
        .expect("user");
    // The password changes between the login's verify and its rehash.
    gatehouse::accounts::store::set_password_hash(db, id, "changed", app.state.clock.now())
        .await
        .expect("change");
    let replaced =
        gatehouse::accounts::store::upgrade_password_hash(db, id, &user.password_hash, "rehash")
            .await
            .expect("upgrade");
    assert!(!replaced);
    let now = gatehouse::accounts::store::find_by_id(db, id)
        .await
        .expect("query")
        .expect("user");
    assert_eq!(now.password_hash, "changed");
}
both!(a_rehash_never_overwrites_a_password_changed_meanwhile);

async fn wrong_current_passwords_count_against_the_account(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        "[rate_limits]\nlogin_failures_per_account_ip = \"10/1h\"\nlogin_failures_per_account = \"3/1h\"\n",
    )
    .await;
    app.activated_user("oracle@example.com").await;
    let t = app.login("oracle@example.com").await;
    let access = t["access_token"].as_str().expect("access");
    let attempt = |i: usize| {
        let (http, url, access) = (
            app.http.clone(),
            app.url("/account/password"),
            access.to_owned(),
        );
        async move {
            http.post(url)
                .bearer_auth(access)
                .json(&serde_json::json!({"current_password": format!("guess-{i}-abcdef"), "new_password": "quiet-Harbor-compass-77"}))
                .send()
                .await
                .expect("request")
                .status()
        }
    };
    for i in 0..3 {
        assert_eq!(attempt(i).await, StatusCode::BAD_REQUEST);
    }
    assert_eq!(attempt(3).await, StatusCode::TOO_MANY_REQUESTS);
}
both!(wrong_current_passwords_count_against_the_account);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_carry_256_random_bits_and_differ_every_time() {
    use base64::Engine as _;
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.activated_user("bits@example.com").await;
    let a = refresh_of(&app.login("bits@example.com").await);
    let b = refresh_of(&app.login("bits@example.com").await);
    for t in [&a, &b] {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .expect("base64url");
        assert_eq!(raw.len(), 64, "id, a 256-bit secret and a tag");
    }
    // Distinct secrets, not only distinct ids.
    assert_ne!(a[22..65], b[22..65]);
}
