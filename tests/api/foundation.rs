//! Foundation: keys, discovery, docs, error shape, the committed spec.

use std::collections::HashSet;
use std::sync::Arc;

use base64::Engine as _;
use jwt_simple::prelude::*;
use reqwest::StatusCode;
use serde_json::Value;

use crate::both;
use crate::helpers::{Backend, ISSUER, TestApp, TestDb, assert_error};

/// The served JWK Set as jwt-simple public keys, by kid.
pub async fn served_keys(app: &TestApp) -> Vec<(String, RS256PublicKey)> {
    let r = app.get("/.well-known/jwks.json").await;
    assert_eq!(r.status(), StatusCode::OK);
    let jwks: Value = r.json().await.expect("json");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| {
            assert_eq!(k["kty"], "RSA");
            assert_eq!(k["use"], "sig");
            assert_eq!(k["alg"], "RS256");
            let b = |s: &Value| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(s.as_str().expect("str"))
                    .expect("base64url")
            };
            let key =
                RS256PublicKey::from_components(&b(&k["n"]), &b(&k["e"])).expect("valid RSA key");
            (k["kid"].as_str().expect("kid").to_owned(), key)
        })
        .collect()
}

async fn jwks_verifies_a_token_signed_by_the_active_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = app.get("/.well-known/jwks.json").await;
    let cc = r.headers()["cache-control"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(cc, "public, max-age=600");
    let keys = served_keys(&app).await;
    assert_eq!(keys.len(), 1);

    // Sign with the server's own active key, verify with an independent JWT library.
    let now = app.state.clock.now();
    let key = app
        .state
        .keys
        .signing_key(now, gatehouse::config::SigningAlg::RS256)
        .expect("active key");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    let claims = serde_json::json!({ "iss": ISSUER, "sub": "probe", "exp": now.timestamp() + 60 });
    let token = jsonwebtoken::encode(&header, &claims, &key.encoding).expect("sign");
    let (kid, public) = &keys[0];
    assert_eq!(kid, &key.kid);
    let opts = VerificationOptions {
        allowed_issuers: Some(HashSet::from([ISSUER.to_owned()])),
        ..Default::default()
    };
    public
        .verify_token::<NoCustomClaims>(&token, Some(opts))
        .expect("independent verification");
}
both!(jwks_verifies_a_token_signed_by_the_active_key);

async fn discovery_lists_every_endpoint_under_the_issuer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let d: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(d["issuer"], ISSUER);
    for (field, path) in [
        ("token_endpoint", "/oauth/token"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("userinfo_endpoint", "/oauth/userinfo"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("introspection_endpoint", "/oauth/introspect"),
        ("authorization_endpoint", "/oauth/authorize"),
        ("end_session_endpoint", "/oauth/logout"),
    ] {
        assert_eq!(d[field], format!("{ISSUER}{path}"), "{field}");
    }
    assert_eq!(
        d["grant_types_supported"],
        serde_json::json!(["authorization_code", "password", "refresh_token"])
    );
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(d["subject_types_supported"], serde_json::json!(["public"]));
    for f in [
        "token_endpoint_auth_methods_supported",
        "scopes_supported",
        "claims_supported",
    ] {
        assert!(d[f].as_array().is_some_and(|a| !a.is_empty()), "{f}");
    }
    // Required by Discovery 1.0; empty while no authorization endpoint exists.
    assert!(d["response_types_supported"].is_array());
}
both!(discovery_lists_every_endpoint_under_the_issuer);

async fn a_restart_keeps_the_same_key(backend: Backend) {
    let db = Arc::new(TestDb::new(backend).await);
    let first = TestApp::spawn_on(db.clone(), "", None).await;
    let kid1 = served_keys(&first).await[0].0.clone();
    first.stop().await;
    let second = TestApp::spawn_on(db, "", None).await;
    let keys = served_keys(&second).await;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].0, kid1);
}
both!(a_restart_keeps_the_same_key);

async fn replicas_starting_together_make_one_key(backend: Backend) {
    let db = Arc::new(TestDb::new(backend).await);
    // Migrate first: the race under test is key creation, not migration.
    {
        let conn = gatehouse::db::connect(&crate::helpers::settings(&db.url, "").database)
            .await
            .expect("connect");
        gatehouse::db::migrate(&conn).await.expect("migrate");
    }
    let apps = futures_join(db.clone()).await;
    let mut kids = HashSet::new();
    for app in &apps {
        for (kid, _) in served_keys(app).await {
            kids.insert(kid);
        }
    }
    assert_eq!(kids.len(), 1, "one key across all replicas: {kids:?}");
}
both!(replicas_starting_together_make_one_key);

/// Replicas (or a rolling restart's old and new pods) opening one new SQLite
/// file at once: each switches it to WAL on opening, and SQLite refuses the
/// loser of that race at once, without waiting. The race is narrow (it lost
/// in one CI run of `two_replicas_behave_as_one`), so it is run many times
/// over (a few seconds in all, with the retries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_new_sqlite_file_together_never_fails() {
    for round in 0..400 {
        let db = TestDb::new(Backend::Sqlite).await;
        let settings = crate::helpers::settings(&db.url, "").database;
        let opened =
            futures_util::future::join_all((0..16).map(|_| gatehouse::db::connect(&settings)))
                .await;
        for r in opened {
            if let Err(e) = r {
                panic!("round {round}: {e}");
            }
        }
    }
}

async fn futures_join(db: Arc<TestDb>) -> Vec<TestApp> {
    let mut handles = Vec::new();
    for _ in 0..4 {
        let db = db.clone();
        handles.push(tokio::spawn(async move {
            TestApp::spawn_on(db, "", None).await
        }));
    }
    let mut apps = Vec::new();
    for h in handles {
        apps.push(h.await.expect("replica started"));
    }
    apps
}

async fn health_and_readiness_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["database"], "up");
    assert_eq!(body["redis"], "disabled");
}
both!(health_and_readiness_answer);

#[tokio::test]
async fn readiness_is_503_when_the_database_is_gone() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.state.db.clone().close().await.expect("close pool");
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["database"], "down");
}

#[tokio::test]
async fn docs_and_the_spec_are_served() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let r = app.get("/docs").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text().await.expect("html").contains("swagger"),
        "Swagger UI page"
    );
    let spec: Value = app.get("/openapi.json").await.json().await.expect("json");
    assert!(spec["paths"]["/oauth/token"]["post"].is_object());
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["oauth2"]["type"], "oauth2");
    assert_eq!(
        schemes["oauth2"]["flows"]["password"]["tokenUrl"],
        "/oauth/token"
    );
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
}

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let generated = gatehouse::api::spec_json();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect(
                "openapi/openapi.json exists: run `cargo run -- openapi > openapi/openapi.json`",
            );
    assert!(
        generated.trim() == committed.trim(),
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[tokio::test]
async fn bad_requests_get_the_contract_error_shape() {
    let app = TestApp::spawn_with(Backend::Sqlite, "[server]\nmax_body_bytes = 1024\n").await;
    let c = &app.http;
    assert_error(
        app.get("/no/such/path").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        c.delete(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("req"),
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    let big = "x".repeat(4096);
    assert_error(
        c.post(app.url("/oauth/token"))
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .expect("req"),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    assert_error(
        c.post(app.url("/oauth/token"))
            .header("content-type", "text/plain")
            .body("hi")
            .send()
            .await
            .expect("req"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert_error(
        c.post(app.url("/oauth/token"))
            .header("content-type", "application/json")
            .body("{nope")
            .send()
            .await
            .expect("req"),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert_error(
        c.post(app.url("/account/register"))
            .header("content-type", "application/json")
            .body(vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'])
            .send()
            .await
            .expect("req"),
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn responses_carry_security_headers_and_a_request_id() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let r = app.get("/.well-known/openid-configuration").await;
    let h = r.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(
        h["content-security-policy"]
            .to_str()
            .expect("ascii")
            .contains("default-src 'none'")
    );
    assert!(h.get("server").is_none());
    assert!(uuid::Uuid::parse_str(h["x-request-id"].to_str().expect("ascii")).is_ok());
}
