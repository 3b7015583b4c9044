//! Tokens: the end-to-end flow, independent verification, forgeries,
//! rotation under concurrency, timing of failed logins.
//!
//! (Over 500 lines: the token lifecycle reads as one story, issue to
//! revocation; splitting it would separate each step from its setup.)

use std::collections::HashSet;
use std::time::{Duration, Instant};

use base64::Engine as _;
use jwt_simple::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::foundation::served_keys;
use crate::helpers::{Backend, ISSUER, PASSWORD, TestApp, assert_error};

const CONFIDENTIAL: &str = r#"
[[clients]]
id = "gatehouse"
grant_types = ["password", "refresh_token"]
[[clients]]
id = "resource-server"
secret = "rs-secret-1234567890"
"#;

async fn introspect(app: &TestApp, token: &str) -> Value {
    let r = app
        .http
        .post(app.url("/oauth/introspect"))
        .basic_auth("resource-server", Some("rs-secret-1234567890"))
        .form(&[("token", token)])
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("json")
}

async fn the_whole_session_flow_works(backend: Backend) {
    let app = TestApp::spawn_with(backend, CONFIDENTIAL).await;
    // Register → activate (operator) → password grant.
    let r = app
        .register(
            "Flow@Example.com",
            json!({"username": "flowuser", "given_name": "Flo"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["activation_required"], true);
    assert_eq!(body["user"]["is_active"], false);
    assert!(body["user"].get("password_hash").is_none());
    let r = app.password_grant("flow@example.com", PASSWORD).await;
    let err = assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert!(
        err["error_description"]
            .as_str()
            .expect("d")
            .contains("not activated")
    );
    app.state
        .accounts
        .activate_by_operator("flow@example.com")
        .await
        .expect("activate");

    let r = app.password_grant("flowuser", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let t: Value = r.json().await.expect("json");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 900);
    assert!(t["id_token"].is_string(), "openid is in the default scope");
    let access = t["access_token"].as_str().expect("at").to_owned();

    // Userinfo → PATCH /account/me → userinfo shows the change.
    let info: Value = app
        .get_bearer("/oauth/userinfo", &access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(info["email"], "Flow@Example.com");
    assert_eq!(info["given_name"], "Flo");
    let r = app
        .http
        .patch(app.url("/account/me"))
        .bearer_auth(&access)
        .json(&json!({"given_name": "Florence", "phone_number": "+14155550123"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), StatusCode::OK);
    let info: Value = app
        .get_bearer("/oauth/userinfo", &access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(info["given_name"], "Florence");
    assert!(info.get("phone_number").is_none(), "phone is not in scope");

    // Refresh: the old refresh token is then refused; replaying it later kills the newest.
    let first_refresh = t["refresh_token"].as_str().expect("rt").to_owned();
    let r = app.refresh(&first_refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t2: Value = r.json().await.expect("json");
    let second_refresh = t2["refresh_token"].as_str().expect("rt").to_owned();
    assert_ne!(first_refresh, second_refresh);
    app.advance(Duration::from_secs(11));
    assert_error(
        app.refresh(&first_refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_error(
        app.refresh(&second_refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;

    // Revoke an access token → userinfo 401 → introspect says inactive.
    let t3 = app.login("flowuser").await;
    let access3 = t3["access_token"].as_str().expect("at");
    assert_eq!(introspect(&app, access3).await["active"], true);
    let r = app
        .post_form(
            "/oauth/revoke",
            &[("token", access3), ("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.get_bearer("/oauth/userinfo", access3).await;
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .starts_with("Bearer")
    );
    assert_error(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
    assert_eq!(introspect(&app, access3).await, json!({"active": false}));
}
both!(the_whole_session_flow_works);

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

async fn issued_tokens_verify_through_the_jwks_independently(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.activated_user("rp@example.com").await;
    let t = app.login("rp@example.com").await;
    let keys = served_keys(&app).await;
    let (kid, key) = &keys[0];
    let at = t["access_token"].as_str().expect("at");
    let meta = Token::decode_metadata(at).expect("metadata");
    assert_eq!(meta.key_id(), Some(kid.as_str()));
    assert_eq!(meta.signature_type(), Some("at+jwt"));
    assert_eq!(meta.algorithm(), "RS256");
    let opts = VerificationOptions {
        allowed_issuers: Some(HashSet::from([ISSUER.to_owned()])),
        allowed_audiences: Some(HashSet::from(["gatehouse".to_owned()])),
        ..Default::default()
    };
    let claims = key
        .verify_token::<Value>(at, Some(opts.clone()))
        .expect("access token verifies");
    assert_eq!(claims.custom["client_id"], "gatehouse");
    assert_eq!(claims.custom["email"], "rp@example.com");
    assert!(claims.jwt_id.is_some());
    let exp = claims.expires_at.expect("exp").as_secs();
    let iat = claims.issued_at.expect("iat").as_secs();
    assert_eq!(exp - iat, 900);

    let id = t["id_token"].as_str().expect("id token");
    let claims = key
        .verify_token::<Value>(id, Some(opts))
        .expect("id token verifies");
    assert!(claims.custom["auth_time"].is_number());
    assert_eq!(claims.custom["email_verified"], true);
}
both!(issued_tokens_verify_through_the_jwks_independently);

async fn forged_tokens_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.activated_user("forge@example.com").await;
    let t = app.login("forge@example.com").await;
    let at = t["access_token"].as_str().expect("at").to_owned();
    let parts: Vec<&str> = at.split('.').collect();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[0])
            .expect("b64"),
    )
    .expect("json");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .expect("b64"),
    )
    .expect("json");
    let kid = header["kid"].as_str().expect("kid");

    // alg none
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
        parts[1]
    );
    // HS256 keyed with the public key (the JWKS JSON, and the modulus)
    let jwks = app
        .get("/.well-known/jwks.json")
        .await
        .text()
        .await
        .expect("text");
    let hs_header = json!({"alg": "HS256", "typ": "at+jwt", "kid": kid});
    let hs = |secret: &[u8]| {
        use hmac::Mac as _;
        let msg = format!("{}.{}", b64(&hs_header), parts[1]);
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
        mac.update(msg.as_bytes());
        format!(
            "{msg}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        )
    };
    let hs_jwks = hs(jwks.as_bytes());
    // unknown kid
    let unknown_kid = format!(
        "{}.{}.{}",
        b64(&json!({"alg": "RS256", "typ": "at+jwt", "kid": "nope"})),
        parts[1],
        parts[2]
    );
    // tampered payload
    let mut evil = claims.clone();
    evil["sub"] = json!(uuid::Uuid::new_v4().to_string());
    let tampered = format!("{}.{}.{}", parts[0], b64(&evil), parts[2]);
    // expired, and another issuer: validly signed with the server's key
    let now = app.state.clock.now().timestamp();
    let key = app
        .state
        .keys
        .signing_key(app.state.clock.now(), gatehouse::config::SigningAlg::RS256)
        .expect("key");
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some(key.kid.clone());
    h.typ = Some("at+jwt".into());
    let mut expired = claims.clone();
    expired["iat"] = json!(now - 3600);
    expired["nbf"] = json!(now - 3600);
    expired["exp"] = json!(now - 600);
    let expired = jsonwebtoken::encode(&h, &expired, &key.encoding).expect("sign");
    let mut foreign = claims.clone();
    foreign["iss"] = json!("https://evil.example");
    let foreign = jsonwebtoken::encode(&h, &foreign, &key.encoding).expect("sign");
    // an ID token is not an access token
    let id_token = t["id_token"].as_str().expect("id").to_owned();

    // The genuine token works and is remembered as verified: the forgeries
    // made from its parts must still be checked in full.
    assert_eq!(
        app.get_bearer("/oauth/userinfo", &at).await.status(),
        StatusCode::OK
    );
    for (name, token) in [
        ("alg none", none),
        ("HS256 with the JWKS as secret", hs_jwks),
        ("unknown kid", unknown_kid),
        ("tampered payload", tampered),
        ("expired", expired),
        ("another issuer", foreign),
        ("ID token", id_token),
        ("garbage", "not.a.jwt".into()),
    ] {
        let r = app.get_bearer("/oauth/userinfo", &token).await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{name} must be refused"
        );
        assert!(r.headers().contains_key("www-authenticate"), "{name}");
    }
    // The genuine token still works.
    let r = app.get_bearer("/account/me", &at).await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.json().await.expect("json");
    assert_eq!(me["id"], user);
}
both!(forged_tokens_are_refused);

async fn parallel_refreshes_in_the_grace_window_share_one_child(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.activated_user("tabs@example.com").await;
    let t = app.login("tabs@example.com").await;
    let rt = t["refresh_token"].as_str().expect("rt").to_owned();
    let mut handles = Vec::new();
    for _ in 0..20 {
        let http = app.http.clone();
        let url = app.url("/oauth/token");
        let rt = rt.clone();
        handles.push(tokio::spawn(async move {
            http.post(url)
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                ])
                .send()
                .await
        }));
    }
    let mut children = HashSet::new();
    for h in handles {
        let r = h.await.expect("task").expect("request");
        assert_eq!(r.status(), StatusCode::OK, "every tab's refresh succeeds");
        let body: Value = r.json().await.expect("json");
        children.insert(body["refresh_token"].as_str().expect("rt").to_owned());
    }
    assert_eq!(children.len(), 1, "one and the same child");
    let child = children.into_iter().next().expect("child");
    // The family is alive: the child refreshes.
    let r = app.refresh(&child).await;
    assert_eq!(r.status(), StatusCode::OK);
    let grandchild: Value = r.json().await.expect("json");
    // The parent replayed after the window is reuse: the family dies.
    app.advance(Duration::from_secs(11));
    assert_error(
        app.refresh(&rt).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    let gc = grandchild["refresh_token"].as_str().expect("rt");
    assert_error(
        app.refresh(gc).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
}
both!(parallel_refreshes_in_the_grace_window_share_one_child);

async fn token_endpoint_errors_follow_rfc_6749(backend: Backend) {
    let app = TestApp::spawn_with(backend, CONFIDENTIAL).await;
    app.activated_user("err@example.com").await;
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, StatusCode, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "no grant type",
            vec![],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "unknown grant type",
            vec![("grant_type", "client_credentials")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (
            "missing password",
            vec![("grant_type", "password"), ("username", "err@example.com")],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            "unknown scope",
            vec![
                ("grant_type", "password"),
                ("username", "err@example.com"),
                ("password", PASSWORD),
                ("scope", "openid admin"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
        ),
        (
            "bad refresh token",
            vec![("grant_type", "refresh_token"), ("refresh_token", "abc")],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            "unknown client",
            vec![("grant_type", "password"), ("client_id", "nobody")],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
    ];
    for (name, form, status, code) in cases {
        let r = app.post_form("/oauth/token", &form).await;
        assert_eq!(r.status(), status, "{name}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"], code, "{name}: {body}");
    }
    // JSON bodies work like forms.
    let r = app
        .post_json(
            "/oauth/token",
            &json!({"grant_type": "password", "username": "err@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Introspection needs a confidential client.
    let r = app.post_form("/oauth/introspect", &[("token", "x")]).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let r = app
        .http
        .post(app.url("/oauth/introspect"))
        .basic_auth("resource-server", Some("wrong"))
        .form(&[("token", "x")])
        .send()
        .await
        .expect("req");
    assert_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
}
both!(token_endpoint_errors_follow_rfc_6749);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_email_and_wrong_password_look_the_same() {
    // Production hashing parameters: the point is the time a hash takes.
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        "[password_hash]\nmemory_kib = 19456\niterations = 2\n[rate_limits]\nlogin_failures_per_account_ip = \"1000/1m\"\nlogin_failures_per_account = \"1000/1m\"\n",
    )
    .await;
    app.activated_user("real@example.com").await;
    let mut unknown = Vec::new();
    let mut wrong = Vec::new();
    let mut bodies = HashSet::new();
    for i in 0..9 {
        for (who, times) in [
            ("ghost@example.com", &mut unknown),
            ("real@example.com", &mut wrong),
        ] {
            let started = Instant::now();
            let r = app
                .password_grant(who, &format!("Wrong-password-{i}"))
                .await;
            times.push(started.elapsed());
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
            bodies.insert(r.text().await.expect("body"));
        }
    }
    assert_eq!(bodies.len(), 1, "one body for both: {bodies:?}");
    unknown.sort();
    wrong.sort();
    let (u, w) = (unknown[4].as_secs_f64(), wrong[4].as_secs_f64());
    let ratio = u.max(w) / u.min(w);
    assert!(
        ratio < 1.5,
        "median unknown {u:.4}s vs wrong password {w:.4}s"
    );
}

async fn password_change_revokes_other_sessions_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.activated_user("change@example.com").await;
    let mine = app.login("change@example.com").await;
    let other = app.login("change@example.com").await;
    let r = app
        .http
        .post(app.url("/account/password"))
        .bearer_auth(mine["access_token"].as_str().expect("at"))
        .json(&json!({"current_password": PASSWORD, "new_password": "another-Strong-phrase-77"}))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.refresh(mine["refresh_token"].as_str().expect("rt"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_error(
        app.refresh(other["refresh_token"].as_str().expect("rt"))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_error(
        app.password_grant("change@example.com", PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        app.password_grant("change@example.com", "another-Strong-phrase-77")
            .await
            .status(),
        StatusCode::OK
    );
}
both!(password_change_revokes_other_sessions_only);

/// A refresh with a `client_id` in the body.
async fn refresh_as(
    app: &TestApp,
    token: &str,
    client: &str,
    scope: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", client),
    ];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    app.post_form("/oauth/token", &form).await
}

async fn refresh_narrows_scope_and_refuses_other_clients_and_disabled_accounts(backend: Backend) {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = TestApp::spawn_with(
        backend,
        "[[clients]]\nid = \"gatehouse\"\ngrant_types = [\"password\", \"refresh_token\"]\n[[clients]]\nid = \"other-app\"\ngrant_types = [\"password\", \"refresh_token\"]\n",
    )
    .await;
    app.activated_user("scope@example.com").await;
    let t = app.login("scope@example.com").await;
    let full = t["scope"].as_str().expect("scope").to_owned();
    let rt = t["refresh_token"].as_str().expect("rt").to_owned();

    // Asking for more than was granted: refused, and the token did not rotate.
    let r = refresh_as(&app, &rt, "gatehouse", Some(&format!("{full} phone"))).await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_scope").await;
    // Another client cannot use it, and trying does not rotate it either.
    let r = refresh_as(&app, &rt, "other-app", None).await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // A narrower scope: the access token carries it, no ID token without openid.
    let r = refresh_as(&app, &rt, "gatehouse", Some("profile")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let narrow: Value = r.json().await.expect("json");
    assert_eq!(narrow["scope"], "profile");
    assert!(narrow.get("id_token").is_none(), "{narrow}");
    let info: Value = app
        .get_bearer(
            "/oauth/userinfo",
            narrow["access_token"].as_str().expect("at"),
        )
        .await
        .json()
        .await
        .expect("json");
    assert!(info.get("email").is_none(), "email is out of scope: {info}");
    // The child keeps the whole original grant (RFC 6749 §6).
    let child = narrow["refresh_token"].as_str().expect("rt").to_owned();
    let r = refresh_as(&app, &child, "gatehouse", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let again: Value = r.json().await.expect("json");
    assert_eq!(again["scope"], full.as_str());
    let live = again["refresh_token"].as_str().expect("rt").to_owned();

    // A disabled account: refused, and its session family is revoked for good.
    let set_disabled = |on: bool| {
        gatehouse::entity::users::Entity::update_many()
            .col_expr(gatehouse::entity::users::Column::Disabled, Expr::value(on))
            .filter(gatehouse::entity::users::Column::Email.eq("scope@example.com"))
            .exec(&app.state.db)
    };
    set_disabled(true).await.expect("disable");
    let r = refresh_as(&app, &live, "gatehouse", None).await;
    let err = assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert!(
        err["error_description"]
            .as_str()
            .expect("d")
            .contains("disabled"),
        "{err}"
    );
    set_disabled(false).await.expect("enable");
    let r = refresh_as(&app, &live, "gatehouse", None).await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
}
both!(refresh_narrows_scope_and_refuses_other_clients_and_disabled_accounts);
