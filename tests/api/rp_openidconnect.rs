//! The Rust `openidconnect` crate, unmodified, as a relying party: it
//! fetches the JWKS and verifies an ID token (signature, issuer, audience,
//! expiry) the way an app built on it does. Its provider discovery needs an
//! `authorization_endpoint`, which Gatehouse will have with the
//! authorization code flow; until then the app configures the JWKS by hand.
//!
//! With `GATEHOUSE_RP_RESULTS=FILE` set, the outcome is appended to FILE as
//! a line of the relying-party matrix (`scripts/rp-matrix`).

use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet};
use openidconnect::{ClientId, IssuerUrl, JsonWebKeySetUrl, Nonce};
use reqwest::StatusCode;
use serde_json::Value;

use crate::both;
use crate::helpers::{Backend, ISSUER, PASSWORD, TestApp};

fn record(backend: Backend, check: &str, passed: bool, detail: &str) {
    let Ok(path) = std::env::var("GATEHOUSE_RP_RESULTS") else {
        return;
    };
    let line = serde_json::json!({
        "library": "openidconnect (Rust)",
        "version": "4.1.0",
        "check": check,
        "backend": if backend == Backend::Sqlite { "sqlite" } else { "postgres" },
        "result": if passed { "pass" } else { "fail" },
        "detail": detail,
    });
    use std::io::Write as _;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

async fn the_openidconnect_crate_verifies_our_id_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.activated_user("oidc-rs@example.com").await;
    let r = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("username", "oidc-rs@example.com"),
                ("password", PASSWORD),
                ("scope", "openid email profile"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let t: Value = r.json().await.expect("json");
    let raw = t["id_token"].as_str().expect("id token");

    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .expect("http client");
    let jwks_url = JsonWebKeySetUrl::new(app.url("/.well-known/jwks.json")).expect("jwks url");
    let jwks = CoreJsonWebKeySet::fetch_async(&jwks_url, &http)
        .await
        .expect("openidconnect fetches and parses the JWKS");
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new("gatehouse".into()),
        IssuerUrl::new(ISSUER.into()).expect("issuer"),
        jwks,
    );
    let token: CoreIdToken = raw.parse().expect("an ID token openidconnect can parse");
    // The password grant carries no nonce (there is no authorization request).
    let no_nonce = |n: Option<&Nonce>| {
        if n.is_none() {
            Ok(())
        } else {
            Err("unexpected nonce".to_owned())
        }
    };
    let verified = token.claims(&verifier, no_nonce);
    record(
        backend,
        "ID token",
        verified.is_ok(),
        &verified
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default(),
    );
    let claims = verified.expect("openidconnect verifies the ID token");
    assert_eq!(claims.subject().as_str(), id);
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("oidc-rs@example.com")
    );

    // A token from another audience is refused by the same verifier.
    let other = CoreIdTokenVerifier::new_public_client(
        ClientId::new("someone-else".into()),
        IssuerUrl::new(ISSUER.into()).expect("issuer"),
        CoreJsonWebKeySet::fetch_async(&jwks_url, &http)
            .await
            .expect("jwks"),
    );
    assert!(token.claims(&other, no_nonce).is_err());
}
both!(the_openidconnect_crate_verifies_our_id_tokens);
