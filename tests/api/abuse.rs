//! Abuse resistance, as an attacker would try it: look-alike addresses,
//! squatting an address, bodies with no length.

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

    // The owner registers their own address: not 409, a fresh start.
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
    let code = code_in(&text);

    // The owner's code activates the account; the owner's password logs in,
    // the squatter's does not.
    let r = app
        .post_json(
            "/account/activate",
            &json!({"email": "KATE@example.com", "code": code}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_error(
        app.password_grant("kate@example.com", PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    let r = app.password_grant("kate@example.com", OTHER_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Every spelling logs into the one account.
    let r = app.password_grant(squatter, OTHER_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);

    // Now it is taken, in any spelling.
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
