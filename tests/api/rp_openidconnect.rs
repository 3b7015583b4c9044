//! The Rust `openidconnect` crate, unmodified, as a relying party: it
//! fetches the JWKS and verifies an ID token (signature, issuer, audience,
//! expiry) the way an app built on it does, and logs a user in the way its
//! documentation shows: provider discovery, an authorization URL with PKCE
//! and a nonce, the code exchange, ID token verification, userinfo.
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

async fn the_openidconnect_crate_logs_in_with_discovery_and_the_code_flow(backend: Backend) {
    use openidconnect::core::{
        CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
    };
    use openidconnect::{
        AuthorizationCode, CsrfToken, OAuth2TokenResponse as _, PkceCodeChallenge, RedirectUrl,
        Scope, TokenResponse as _,
    };

    // The issuer must be where the app really listens: discovery fetches
    // `{issuer}/.well-known/openid-configuration` and checks `issuer`.
    let port = crate::helpers::MailSink::unused_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let app = TestApp::spawn_with(
        backend,
        &format!("[server]\nbind = \"127.0.0.1:{port}\"\npublic_url = \"{issuer}\"\n"),
    )
    .await;
    let sub = app.activated_user("oidc-flow@example.com").await;
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .expect("http client");

    // How far the login got: 1 discovery, 2 code flow + ID token, 3 userinfo.
    let stage = std::sync::atomic::AtomicU8::new(0);
    let reached = |n: u8| stage.store(n, std::sync::atomic::Ordering::Relaxed);
    let outcome: Result<(), String> = async {
        let provider = CoreProviderMetadata::discover_async(
            IssuerUrl::new(issuer.clone()).map_err(|e| e.to_string())?,
            &http,
        )
        .await
        .map_err(|e| format!("discovery: {e}"))?;
        reached(1);
        let client =
            CoreClient::from_provider_metadata(provider, ClientId::new("rust-app".into()), None)
                .set_redirect_uri(
                    RedirectUrl::new("http://127.0.0.1:49152/cb".into())
                        .map_err(|e| e.to_string())?,
                );
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, csrf, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .url();
        let browser = crate::helpers::Browser::new(&app.base);
        let back = browser
            .authorize(url.as_str(), "oidc-flow@example.com", PASSWORD)
            .await;
        let q = crate::helpers::query_of(&back);
        if q.get("state") != Some(csrf.secret()) {
            return Err(format!("state not echoed: {back}"));
        }
        let code = q.get("code").ok_or_else(|| format!("no code: {back}"))?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.clone()))
            .map_err(|e| e.to_string())?
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .map_err(|e| format!("code exchange: {e}"))?;
        let id_token = tokens.id_token().ok_or("no ID token")?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &nonce)
            .map_err(|e| format!("ID token: {e}"))?;
        if claims.subject().as_str() != sub {
            return Err("wrong subject".into());
        }
        reached(2);
        let info: CoreUserInfoClaims = client
            .user_info(tokens.access_token().clone(), None)
            .map_err(|e| e.to_string())?
            .request_async(&http)
            .await
            .map_err(|e| format!("userinfo: {e}"))?;
        if info.email().map(|e| e.as_str()) != Some("oidc-flow@example.com") {
            return Err("userinfo email".into());
        }
        reached(3);
        Ok(())
    }
    .await;
    let got = stage.load(std::sync::atomic::Ordering::Relaxed);
    let detail = outcome
        .as_ref()
        .err()
        .map(String::as_str)
        .unwrap_or_default();
    for (n, check) in [(1, "discovery"), (2, "code flow (PKCE)"), (3, "userinfo")] {
        record(backend, check, got >= n, if got >= n { "" } else { detail });
    }
    outcome.expect("openidconnect logs in through discovery and the code flow");
}
both!(the_openidconnect_crate_logs_in_with_discovery_and_the_code_flow);
