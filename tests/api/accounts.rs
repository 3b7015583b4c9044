//! Accounts: registration rules, profile, users from the CLI's service.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::helpers::{Backend, PASSWORD, TestApp, assert_error};

async fn registration_validates_every_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let long = "a".repeat(300);
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"password": PASSWORD}), "email", "missing email"),
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            "email",
            "bad email",
        ),
        (
            json!({"email": format!("{long}@example.com"), "password": PASSWORD}),
            "email",
            "overlong email",
        ),
        (
            json!({"email": "v@example.com"}),
            "password",
            "missing password",
        ),
        (
            json!({"email": "v@example.com", "password": "short"}),
            "password",
            "short password",
        ),
        (
            json!({"email": "v@example.com", "password": "12345678901234"}),
            "password",
            "numeric password",
        ),
        (
            json!({"email": "v@example.com", "password": "password123"}),
            "password",
            "common password",
        ),
        (
            json!({"email": "mary.jones@example.com", "password": "maryjones2024"}),
            "password",
            "password like the email",
        ),
        (
            json!({"email": "v@example.com", "password": "x".repeat(129)}),
            "password",
            "overlong password",
        ),
        (
            json!({"email": "v@example.com", "password": PASSWORD, "username": "a b"}),
            "username",
            "bad username",
        ),
        (
            json!({"email": "v@example.com", "password": PASSWORD, "phone_number": "12345"}),
            "phone_number",
            "bad phone",
        ),
        (
            json!({"email": "v@example.com", "password": PASSWORD, "given_name": long}),
            "given_name",
            "overlong name",
        ),
    ];
    for (body, field, name) in cases {
        let r = app.post_json("/account/register", &body).await;
        let err = assert_error(r, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert!(
            err["fields"][field]
                .as_array()
                .is_some_and(|a| !a.is_empty()),
            "{name}: {err}"
        );
    }
    // Nothing was written.
    assert_eq!(
        app.password_grant("v@example.com", PASSWORD).await.status(),
        StatusCode::BAD_REQUEST
    );
    let r = app.register("v@example.com", json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED, "the email is still free");
}
both!(registration_validates_every_field);

async fn emails_are_unique_case_insensitively(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        app.register("Dup@Example.com", json!({"username": "dupe"}))
            .await
            .status(),
        StatusCode::CREATED
    );
    // Taken means activated: an unactivated registration starts over
    // (tests/api/abuse.rs).
    app.state
        .accounts
        .activate_by_operator("Dup@Example.com")
        .await
        .expect("activate");
    assert_error(
        app.register("dup@example.COM", json!({})).await,
        StatusCode::CONFLICT,
        "email_taken",
    )
    .await;
    let err = assert_error(
        app.register("other@example.com", json!({"username": "DUPE"}))
            .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert!(err["fields"]["username"].is_array());
}
both!(emails_are_unique_case_insensitively);

async fn without_activation_registration_returns_tokens(backend: Backend) {
    let app = TestApp::spawn_with(backend, "[accounts]\nrequire_activation = false\n").await;
    let r = app
        .register("open@example.com", json!({"given_name": "Open"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["activation_required"], false);
    assert_eq!(body["user"]["is_active"], true);
    let at = body["tokens"]["access_token"].as_str().expect("tokens");
    let me: Value = app
        .get_bearer("/account/me", at)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["email"], "open@example.com");
    assert_eq!(me["given_name"], "Open");
    assert_eq!(me["roles"], json!([]));
}
both!(without_activation_registration_returns_tokens);

async fn admins_carry_the_admin_role(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.state
        .accounts
        .create_user("root@example.com", PASSWORD, true)
        .await
        .expect("create");
    let t = app.login("root@example.com").await;
    let me: Value = app
        .get_bearer("/account/me", t["access_token"].as_str().expect("at"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["roles"], json!(["admin"]));
    assert_eq!(me["is_active"], true);
}
both!(admins_carry_the_admin_role);

async fn profile_updates_validate_and_can_clear_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.activated_user("prof@example.com").await;
    let t = app.login("prof@example.com").await;
    let at = t["access_token"].as_str().expect("at");
    let patch = |body: Value| {
        app.http
            .patch(app.url("/account/me"))
            .bearer_auth(at)
            .json(&body)
            .send()
    };
    let r = patch(json!({"username": "prof", "family_name": "Smith"}))
        .await
        .expect("req");
    assert_eq!(r.status(), StatusCode::OK);
    let r = patch(json!({"phone_number": "nope"})).await.expect("req");
    assert_error(r, StatusCode::BAD_REQUEST, "validation_failed").await;
    let r = patch(json!({"family_name": null})).await.expect("req");
    let me: Value = r.json().await.expect("json");
    assert_eq!(me["family_name"], Value::Null);
    assert_eq!(me["username"], "prof");
    let r = app
        .http
        .get(app.url("/account/me"))
        .send()
        .await
        .expect("req");
    assert_error(r, StatusCode::UNAUTHORIZED, "invalid_token").await;
}
both!(profile_updates_validate_and_can_clear_fields);
