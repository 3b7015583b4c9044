//! What third-party clients send, as they send it: media types with
//! parameters, CORS on errors, registration with clients configured, strict
//! input, honest discovery, scopes and token types as the RFCs name them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both;
use crate::helpers::{Backend, ISSUER, PASSWORD, TestApp, assert_error, jwt_header};

/// Operators' configuration: named clients, a browser origin.
const CLIENTS: &str = r#"
[server]
cors_origins = ["https://spa.example"]

[[clients]]
id = "spa"
grant_types = ["password", "refresh_token"]

[[clients]]
id = "rs"
secret = "rs-secret-123456"

[[clients]]
id = "spring"
grant_types = ["password", "refresh_token"]
access_token_typ = "JWT"

[[clients]]
id = "refresh-only"
grant_types = ["refresh_token"]
"#;

async fn post_raw(app: &TestApp, path: &str, content_type: &str, body: &str) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .expect("request")
}

async fn media_types_are_matched_as_http_means_them(backend: Backend) {
    let app = TestApp::spawn_with(backend, CLIENTS).await;
    app.activated_user("media@example.com").await;
    let form = format!(
        "grant_type=password&client_id=spa&username=media%40example.com&password={PASSWORD}"
    );
    // authlib and openid-client send `;charset=UTF-8`; browsers' URLSearchParams
    // `;charset=UTF-8` too; some send the type in capitals.
    let mut refresh = String::new();
    for ct in [
        "application/x-www-form-urlencoded;charset=UTF-8",
        "application/x-www-form-urlencoded; charset=utf-8",
        "Application/X-WWW-Form-URLEncoded",
        "application/x-www-form-urlencoded",
    ] {
        let r = post_raw(&app, "/oauth/token", ct, &form).await;
        assert_eq!(r.status(), StatusCode::OK, "{ct}");
        let t: Value = r.json().await.expect("json");
        refresh = t["refresh_token"].as_str().expect("refresh").to_owned();
    }
    let r = post_raw(
        &app,
        "/oauth/token",
        "application/json; charset=UTF-8",
        &json!({"grant_type": "refresh_token", "client_id": "spa", "refresh_token": refresh})
            .to_string(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.expect("json");
    let access = t["access_token"].as_str().expect("access");

    let r = app
        .http
        .post(app.url("/oauth/introspect"))
        .basic_auth("rs", Some("rs-secret-123456"))
        .header(
            "content-type",
            "application/x-www-form-urlencoded;charset=UTF-8",
        )
        .body(format!("token={access}"))
        .send()
        .await
        .expect("introspect");
    assert_eq!(r.status(), StatusCode::OK);
    let i: Value = r.json().await.expect("json");
    assert_eq!(i["active"], true);
    // RFC 7662 §2.2: the token type of RFC 6749 §5.1.
    assert_eq!(i["token_type"], "Bearer");

    let r = post_raw(
        &app,
        "/oauth/revoke",
        "application/x-www-form-urlencoded;charset=UTF-8",
        &format!("token={access}&client_id=spa"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.get_bearer("/account/me", access).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let r = post_raw(
        &app,
        "/account/password/forgot",
        "application/json;charset=UTF-8",
        r#"{"email":"media@example.com"}"#,
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}
both!(media_types_are_matched_as_http_means_them);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_415_names_what_the_endpoint_accepts_and_carries_cors_headers() {
    let app = TestApp::spawn_with(Backend::Sqlite, CLIENTS).await;
    for (path, wants) in [
        (
            "/oauth/token",
            vec!["application/x-www-form-urlencoded", "application/json"],
        ),
        ("/account/register", vec!["application/json"]),
    ] {
        let r = app
            .http
            .post(app.url(path))
            .header("origin", "https://spa.example")
            .header("content-type", "text/plain;charset=UTF-8")
            .body("hello")
            .send()
            .await
            .expect("request");
        assert_eq!(
            r.headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().expect("ascii")),
            Some("https://spa.example"),
            "{path}: an error must be readable by the browser"
        );
        let body = assert_error(
            r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
        let d = body["error_description"].as_str().expect("description");
        for w in &wants {
            assert!(d.contains(w), "{path}: {d} should name {w}");
        }
        if wants.len() == 1 {
            assert!(!d.contains("form"), "{path}: {d} names a type it refuses");
        }
    }
    // A failed login, as a browser SPA sees it: readable through CORS.
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .header("origin", "https://spa.example")
        .form(&[
            ("grant_type", "password"),
            ("client_id", "spa"),
            ("username", "nobody@example.com"),
            ("password", "wrong-password-1"),
        ])
        .send()
        .await
        .expect("request");
    assert!(r.headers().contains_key("access-control-allow-origin"));
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

async fn registration_never_needs_a_client(backend: Backend) {
    let app = TestApp::spawn_with(backend, CLIENTS).await;
    let r = app.register("noclient@example.com", json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let b: Value = r.json().await.expect("json");
    assert_eq!(b["activation_required"], true);
    assert!(b.get("tokens").is_none());
}
both!(registration_never_needs_a_client);

async fn registration_tokens_follow_the_password_grant_client_rules(backend: Backend) {
    let extra = format!("{CLIENTS}\n[accounts]\nrequire_activation = false\n");
    let app = TestApp::spawn_with(backend, &extra).await;

    // No client named, no default client: the account, no tokens.
    let r = app.register("plain@example.com", json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let b: Value = r.json().await.expect("json");
    assert!(b.get("tokens").is_none(), "{b}");

    // Named: tokens for that client, not to be cached.
    let r = app
        .register("spa@example.com", json!({"client_id": "spa"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().expect("ascii")),
        Some("no-store")
    );
    let b: Value = r.json().await.expect("json");
    let access = b["tokens"]["access_token"].as_str().expect("tokens");
    assert_eq!(
        app.get_bearer("/account/me", access).await.status(),
        StatusCode::OK
    );

    // Unknown client: 401 and no account was created.
    let r = app
        .register("ghost@example.com", json!({"client_id": "nope"}))
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let r = app
        .register("ghost@example.com", json!({"client_id": "spa"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED, "the address was not taken");

    // A client that may not use the password grant.
    let r = app
        .register("ro@example.com", json!({"client_id": "refresh-only"}))
        .await;
    assert_error(r, StatusCode::BAD_REQUEST, "unauthorized_client").await;
}
both!(registration_tokens_follow_the_password_grant_client_rules);

async fn strict_input_refuses_wrong_types_unknown_fields_and_control_characters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.activated_user("strict@example.com").await;

    // NUL in a login name: PostgreSQL refuses 0x00 in text; nothing may reach it.
    for username in ["a\u{0}b", "strict@example.com\u{0}", "x\u{7}"] {
        let r = app.password_grant(username, PASSWORD).await;
        let b = assert_error(r, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert!(b["fields"]["username"].is_array(), "{b}");
    }
    let r = app.register("nul\u{0}@example.com", json!({})).await;
    let b = assert_error(r, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert!(b["fields"]["email"].is_array(), "{b}");

    // RFC 6749 §3.2: a parameter given twice is invalid_request.
    let r = app
        .post_form(
            "/oauth/token",
            &[("grant_type", "password"), ("grant_type", "refresh_token")],
        )
        .await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_request").await;

    // A number where a string belongs.
    let r = app
        .register("typed@example.com", json!({"given_name": 12}))
        .await;
    let b = assert_error(r, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert!(b["fields"]["given_name"].is_array(), "{b}");
    let r = app
        .post_json(
            "/oauth/token",
            &json!({"grant_type": "password", "username": 5, "password": PASSWORD}),
        )
        .await;
    let b = assert_error(r, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert!(b["fields"]["username"].is_array(), "{b}");

    // PATCH with a field it does not take: refused, nothing written.
    let t = app.login("strict@example.com").await;
    let access = t["access_token"].as_str().expect("access");
    let before: Value = app
        .get_bearer("/account/me", access)
        .await
        .json()
        .await
        .expect("json");
    app.advance(std::time::Duration::from_secs(5));
    let r = app
        .http
        .patch(app.url("/account/me"))
        .bearer_auth(access)
        .json(&json!({"email": "other@example.com", "given_name": "Eve"}))
        .send()
        .await
        .expect("patch");
    let b = assert_error(r, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert!(b["fields"]["email"].is_array(), "{b}");
    let after: Value = app
        .get_bearer("/account/me", access)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(before, after, "nothing of {id} changed");
}
both!(strict_input_refuses_wrong_types_unknown_fields_and_control_characters);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_advertises_only_what_exists() {
    let app = TestApp::spawn_with(Backend::Sqlite, CLIENTS).await;
    let d: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .expect("json");
    assert!(
        d.get("registration_endpoint").is_none(),
        "registration_endpoint means RFC 7591"
    );
    assert!(
        !d["response_types_supported"]
            .as_array()
            .expect("array")
            .iter()
            .any(|t| t == "token"),
        "no implicit flow exists"
    );
    assert_eq!(
        d["grant_types_supported"],
        json!(["authorization_code", "password", "refresh_token"])
    );
    for f in [
        "token_endpoint_auth_methods_supported",
        "claims_supported",
        "scopes_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ] {
        assert!(d[f].is_array(), "{f}");
    }

    // No client may use the password grant: it is not advertised (the
    // built-in docs client brings the code flow).
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        "[[clients]]\nid = \"r\"\ngrant_types = [\"refresh_token\"]\n",
    )
    .await;
    let d: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        d["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
}

async fn userinfo_needs_the_openid_scope(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.activated_user("scope@example.com").await;
    let r = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", "scope@example.com"),
                ("password", PASSWORD),
                ("scope", "profile email"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.expect("json");
    let access = t["access_token"].as_str().expect("access");
    let r = app.get_bearer("/oauth/userinfo", access).await;
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert_error(r, StatusCode::FORBIDDEN, "insufficient_scope").await;
    // The same token still serves the account endpoints.
    assert_eq!(
        app.get_bearer("/account/me", access).await.status(),
        StatusCode::OK
    );
}
both!(userinfo_needs_the_openid_scope);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_may_ask_for_access_tokens_typed_jwt() {
    let app = TestApp::spawn_with(Backend::Sqlite, CLIENTS).await;
    app.activated_user("typ@example.com").await;
    for (client, typ) in [("spa", "at+jwt"), ("spring", "JWT")] {
        let r = app
            .post_form(
                "/oauth/token",
                &[
                    ("grant_type", "password"),
                    ("client_id", client),
                    ("username", "typ@example.com"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let t: Value = r.json().await.expect("json");
        let access = t["access_token"].as_str().expect("access");
        assert_eq!(jwt_header(access)["typ"], typ, "{client}");
        assert_eq!(
            app.get_bearer("/oauth/userinfo", access).await.status(),
            StatusCode::OK,
            "{client}'s token is ours to accept"
        );
        // An ID token (typ JWT too) is never an access token.
        let id = t["id_token"].as_str().expect("id token");
        assert_eq!(
            app.get_bearer("/account/me", id).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let _ = ISSUER;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spec_names_media_types_exactly_and_marks_required_fields() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let spec: Value = app.get("/openapi.json").await.json().await.expect("json");
    let mut keys = std::collections::BTreeSet::new();
    for (_, methods) in spec["paths"].as_object().expect("paths") {
        for (_, op) in methods.as_object().expect("methods") {
            if let Some(c) = op["requestBody"]["content"].as_object() {
                keys.extend(c.keys().cloned());
            }
            for (_, r) in op["responses"].as_object().expect("responses") {
                if let Some(c) = r["content"].as_object() {
                    keys.extend(c.keys().filter(|k| k.contains("json")).cloned());
                }
            }
        }
    }
    assert_eq!(
        keys.into_iter().collect::<Vec<_>>(),
        vec!["application/json", "application/x-www-form-urlencoded"]
    );
    let schemas = &spec["components"]["schemas"];
    assert_eq!(
        schemas["RegisterRequest"]["required"],
        json!(["email", "password"])
    );
    assert_eq!(schemas["TokenRequest"]["required"], json!(["grant_type"]));
    assert_eq!(schemas["TokenCheckRequest"]["required"], json!(["token"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prefixed_labelled_by_route_template_and_present_at_zero() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let _ = app.get("/no/such/thing/42").await;
    let _ = app
        .password_grant("nobody@example.com", "wrong-password-1")
        .await;
    let text = app.get("/metrics").await.text().await.expect("text");
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(line.starts_with("gatehouse_"), "unprefixed series: {line}");
        assert!(!line.contains("/no/such"), "raw path as a label: {line}");
    }
    assert!(text.contains(r#"route="/oauth/token""#), "route templates");
    for series in [
        r#"gatehouse_rate_limited_total{limit="register_per_ip"}"#,
        r#"gatehouse_config_reloads_total{result="error"}"#,
        r#"gatehouse_refresh_reuse_detected_total"#,
        r#"gatehouse_mail_total{result="dropped"}"#,
    ] {
        assert!(text.contains(series), "{series} missing from the start");
    }
}
