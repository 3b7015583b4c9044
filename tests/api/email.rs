//! Email: activation codes and reset links over a real SMTP conversation,
//! mail outages, enumeration, code throttling, captcha.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::helpers::{Backend, ISSUER, MailSink, PASSWORD, TestApp, assert_error, code_in, metric};

async fn the_activation_code_arrives_by_smtp_and_activates(backend: Backend) {
    let app = TestApp::spawn_with_mail(backend, "").await;
    let r = app.register("new@example.com", json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let mail = app.mail.as_ref().expect("sink");
    let (text, subject) = mail.wait_for("new@example.com", "activation code").await;
    assert!(
        subject.contains("Gatehouse"),
        "the product is named: {subject}"
    );
    let code = code_in(&text);
    assert_error(
        app.password_grant("new@example.com", PASSWORD).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    let r = app
        .post_json(
            "/account/activate",
            &json!({"email": "new@example.com", "code": code}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["user"]["is_active"], true);
    assert_eq!(body["user"]["email_verified"], true);
    app.login("new@example.com").await;
}
both!(the_activation_code_arrives_by_smtp_and_activates);

pub fn reset_token(text: &str) -> String {
    let start = text.find("token=").expect("a reset link") + "token=".len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

async fn the_reset_link_arrives_by_smtp_and_works_once(backend: Backend) {
    let app = TestApp::spawn_with_mail(backend, "").await;
    app.activated_user("lost@example.com").await;
    let session = app.login("lost@example.com").await;
    let r = app
        .post_json(
            "/account/password/forgot",
            &json!({"email": "lost@example.com"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let (text, _) = app
        .mail
        .as_ref()
        .expect("sink")
        .wait_for("lost@example.com", "token=")
        .await;
    // The default `accounts.reset_url` follows `server.public_url`.
    assert!(
        text.contains(&format!("{ISSUER}/password/reset?token=")),
        "{text}"
    );
    let token = reset_token(&text);
    assert!(token.len() >= 43, "256 bits of token");

    // A refused password leaves the link usable.
    let r = app
        .post_json(
            "/account/password/reset",
            &json!({"token": token, "password": "password1"}),
        )
        .await;
    assert_error(r, StatusCode::BAD_REQUEST, "validation_failed").await;
    let new_password = "Fresh-orchard-window-91";
    let r = app
        .post_json(
            "/account/password/reset",
            &json!({"token": token, "password": new_password}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Spent; every session revoked; the new password works.
    let r = app
        .post_json(
            "/account/password/reset",
            &json!({"token": token, "password": new_password}),
        )
        .await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_token").await;
    let rt = session["refresh_token"].as_str().expect("rt");
    assert_error(
        app.refresh(rt).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        app.password_grant("lost@example.com", new_password)
            .await
            .status(),
        StatusCode::OK
    );
    let r = app
        .post_json(
            "/account/password/reset",
            &json!({"token": "forged", "password": new_password}),
        )
        .await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_token").await;
}
both!(the_reset_link_arrives_by_smtp_and_works_once);

async fn reset_links_expire(backend: Backend) {
    let app = TestApp::spawn_with_mail(backend, "[accounts]\nreset_ttl = \"5m\"\n").await;
    app.activated_user("late@example.com").await;
    app.post_json(
        "/account/password/forgot",
        &json!({"email": "late@example.com"}),
    )
    .await;
    let (text, _) = app
        .mail
        .as_ref()
        .expect("sink")
        .wait_for("late@example.com", "token=")
        .await;
    app.advance(Duration::from_secs(301));
    let r = app
        .post_json(
            "/account/password/reset",
            &json!({"token": reset_token(&text), "password": "Fresh-orchard-window-91"}),
        )
        .await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_token").await;
}
both!(reset_links_expire);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_does_not_wait_for_a_dead_mail_server_and_resend_works_later() {
    let port = MailSink::unused_port();
    let extra = format!(
        "[mail]\ntransport = \"smtp\"\nsmtp_url = \"smtp://127.0.0.1:{port}\"\nmax_attempts = 1\n"
    );
    let app = TestApp::spawn_with(Backend::Sqlite, &extra).await;
    let failed_before = metric(
        &app.state.metrics.render(),
        "gatehouse_mail_total",
        ("result", "failed"),
    );
    let started = Instant::now();
    let r = app.register("offline@example.com", json!({})).await;
    let with_smtp_down = started.elapsed();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "registration succeeds with the mail server down"
    );
    eprintln!("MEASURE register with SMTP down: {with_smtp_down:?}");
    // The send was tried in the background, failed, and was counted.
    for _ in 0..200 {
        if metric(
            &app.state.metrics.render(),
            "gatehouse_mail_total",
            ("result", "failed"),
        ) > failed_before
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        metric(
            &app.state.metrics.render(),
            "gatehouse_mail_total",
            ("result", "failed")
        ) > failed_before,
        "the failed send is counted"
    );

    // The mail server comes back; the user asks for another code.
    let sink = MailSink::start_on(port);
    let r = app
        .post_json(
            "/account/activate/resend",
            &json!({"email": "offline@example.com"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let (text, _) = sink
        .wait_for("offline@example.com", "activation code")
        .await;
    let started = Instant::now();
    let r2 = app.register("online@example.com", json!({})).await;
    eprintln!("MEASURE register with SMTP up: {:?}", started.elapsed());
    assert_eq!(r2.status(), StatusCode::CREATED);
    let r = app
        .post_json(
            "/account/activate",
            &json!({"email": "offline@example.com", "code": code_in(&text)}),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "{text}: {}",
        r.text().await.unwrap_or_default()
    );
}

async fn forgot_and_resend_answer_alike_for_unknown_emails(backend: Backend) {
    let app = TestApp::spawn_with_mail(backend, "").await;
    app.register("known@example.com", json!({})).await;
    for path in ["/account/password/forgot", "/account/activate/resend"] {
        let known = app
            .post_json(path, &json!({"email": "known@example.com"}))
            .await;
        let unknown = app
            .post_json(path, &json!({"email": "unknown@example.com"}))
            .await;
        assert_eq!(known.status(), StatusCode::ACCEPTED, "{path}");
        assert_eq!(unknown.status(), known.status(), "{path}");
        assert_eq!(
            unknown.text().await.expect("b"),
            known.text().await.expect("b"),
            "{path}"
        );
    }
    // A resent code replaces the old one.
    // Registration, forgot and resend: three messages; the newest code counts.
    let sink = app.mail.as_ref().expect("sink");
    sink.wait_count(3).await;
    let (latest, _) = sink.wait_for("known@example.com", "activation code").await;
    let r = app
        .post_json(
            "/account/activate",
            &json!({"email": "known@example.com", "code": code_in(&latest)}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}
both!(forgot_and_resend_answer_alike_for_unknown_emails);

async fn five_wrong_codes_lock_activation_until_the_window_passes(backend: Backend) {
    let app = TestApp::spawn_with_mail(backend, "").await;
    app.register("guess@example.com", json!({})).await;
    let (text, _) = app
        .mail
        .as_ref()
        .expect("sink")
        .wait_for("guess@example.com", "activation code")
        .await;
    let code = code_in(&text);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let r = app
            .post_json(
                "/account/activate",
                &json!({"email": "guess@example.com", "code": wrong}),
            )
            .await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_code").await;
    }
    let r = app
        .post_json(
            "/account/activate",
            &json!({"email": "guess@example.com", "code": code}),
        )
        .await;
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .expect("ascii")
            .parse::<u64>()
            .expect("seconds")
            > 0
    );
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    app.advance(Duration::from_secs(10 * 60));
    // The window passed, but five wrong tries killed that code
    // (tests/api/abuse.rs): a new one is needed.
    let r = app
        .post_json(
            "/account/activate",
            &json!({"email": "guess@example.com", "code": code}),
        )
        .await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_code").await;
    let mail = app.mail.as_ref().expect("sink");
    let r = app
        .post_json(
            "/account/activate/resend",
            &json!({"email": "guess@example.com"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    mail.wait_count(2).await;
    let (text, _) = mail.wait_for("guess@example.com", "activation code").await;
    let r = app
        .post_json(
            "/account/activate",
            &json!({"email": "guess@example.com", "code": code_in(&text)}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}
both!(five_wrong_codes_lock_activation_until_the_window_passes);

/// A stand-in for the captcha provider's siteverify URL: `good` passes.
async fn fake_siteverify() -> u16 {
    use poem::{EndpointExt as _, Route, handler, post, web::Form};
    #[handler]
    fn verify(
        Form(form): Form<std::collections::HashMap<String, String>>,
    ) -> poem::web::Json<Value> {
        let ok = form.get("secret").map(String::as_str) == Some("captcha-secret")
            && form.get("response").map(String::as_str) == Some("good");
        poem::web::Json(json!({ "success": ok }))
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let app = Route::new().at("/siteverify", post(verify)).boxed();
    tokio::spawn(
        poem::Server::new(poem::listener::TcpListener::bind(format!(
            "127.0.0.1:{port}"
        )))
        .run(app),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    port
}

async fn captcha_is_required_and_verified_when_configured(backend: Backend) {
    let port = fake_siteverify().await;
    let extra = format!(
        "[captcha]\nsecret = \"captcha-secret\"\nverify_url = \"http://127.0.0.1:{port}/siteverify\"\n"
    );
    let app = TestApp::spawn_with(backend, &extra).await;
    let err = assert_error(
        app.register("bot@example.com", json!({})).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert!(err["fields"]["captcha_token"].is_array(), "{err}");
    let r = app
        .register("bot@example.com", json!({"captcha_token": "bad"}))
        .await;
    assert_error(r, StatusCode::BAD_REQUEST, "validation_failed").await;
    let r = app
        .register("human@example.com", json!({"captcha_token": "good"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let dead = MailSink::unused_port();
    let extra = format!(
        "[captcha]\nsecret = \"captcha-secret\"\nverify_url = \"http://127.0.0.1:{dead}/siteverify\"\ntimeout = \"1s\"\n"
    );
    let app = TestApp::spawn_with(backend, &extra).await;
    let r = app
        .register("human@example.com", json!({"captcha_token": "good"}))
        .await;
    assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
}
both!(captcha_is_required_and_verified_when_configured);
