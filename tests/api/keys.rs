//! Key rotation end to end, and private keys encrypted at rest.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};

use crate::both;
use crate::foundation::served_keys;
use crate::helpers::{Backend, TestApp, TestDb, assert_error};

/// A fresh access token of `email` (a password grant).
async fn access_token(app: &TestApp, email: &str) -> String {
    app.login(email).await["access_token"]
        .as_str()
        .expect("at")
        .to_owned()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("kid")
}

async fn rotation_publishes_first_signs_later_and_retires_the_old_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.activated_user("rot@example.com").await;
    let old_token = access_token(&app, "rot@example.com").await;
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
        .expect("rotate")
        .remove(0);
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
    let t = access_token(&app, "rot@example.com").await;
    assert_eq!(
        kid_of(&t),
        old_kid,
        "the old key signs until jwks_max_age has passed"
    );

    // jwks_max_age has passed, but a replica reloading keys every 30 s may
    // have published the key up to 30 s late: not yet.
    app.advance(Duration::from_secs(601));
    let t = access_token(&app, "rot@example.com").await;
    assert_eq!(kid_of(&t), old_kid, "every replica's JWKS must age first");
    app.advance(Duration::from_secs(30));
    let new_token = access_token(&app, "rot@example.com").await;
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

/// A token accepted once is remembered (its signature is not checked
/// again), but only while its key is published: an operator who deletes a
/// compromised key stops its tokens at the next key reload, expired or not.
async fn a_deleted_key_stops_its_tokens_even_after_they_were_accepted(backend: Backend) {
    use sea_orm::{ColumnTrait as _, EntityTrait as _, QueryFilter as _};
    let app = TestApp::spawn(backend).await;
    app.activated_user("gone@example.com").await;
    let old_token = access_token(&app, "gone@example.com").await;
    for _ in 0..3 {
        assert_eq!(
            app.get_bearer("/account/me", &old_token).await.status(),
            StatusCode::OK
        );
    }
    // A new key takes over; the old one is deleted, as after a compromise.
    let now = app.state.clock.now();
    app.state
        .keys
        .rotate(now, Duration::ZERO, Duration::from_secs(900))
        .await
        .expect("rotate");
    gatehouse::entity::signing_keys::Entity::delete_many()
        .filter(gatehouse::entity::signing_keys::Column::Kid.eq(kid_of(&old_token)))
        .exec(&app.state.db)
        .await
        .expect("delete");
    // The new key signs once every replica may have published it (30 s).
    app.advance(Duration::from_secs(31));
    app.state
        .keys
        .reload(app.state.clock.now(), Duration::from_secs(900))
        .await
        .expect("reload");
    assert!(
        !served_keys(&app)
            .await
            .iter()
            .any(|(k, _)| *k == kid_of(&old_token))
    );
    for path in ["/account/me", "/oauth/userinfo"] {
        assert_error(
            app.get_bearer(path, &old_token).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
    }
    // Tokens of the new key are accepted, and again from memory.
    let new_token = access_token(&app, "gone@example.com").await;
    assert_ne!(kid_of(&new_token), kid_of(&old_token));
    for _ in 0..2 {
        assert_eq!(
            app.get_bearer("/account/me", &new_token).await.status(),
            StatusCode::OK
        );
    }
}
both!(a_deleted_key_stops_its_tokens_even_after_they_were_accepted);

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
    let last = access_token(&app, "shrink@example.com").await;
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

/// Clients that chose a faster algorithm than RS256.
const ALGORITHM_CLIENTS: &str = r#"
[[clients]]
id = "es"
grant_types = ["password", "refresh_token"]
signing_alg = "ES256"

[[clients]]
id = "ed"
grant_types = ["password", "refresh_token"]
signing_alg = "EdDSA"

[[clients]]
id = "rsa"
grant_types = ["password", "refresh_token"]
"#;

/// Checks `token`'s signature with jwt-simple (not the server's library)
/// and the key of its `kid` in the served JWKS; returns the JWS `alg`.
fn verified_independently(jwks: &serde_json::Value, token: &str) -> String {
    use base64::Engine as _;
    use jwt_simple::prelude::*;
    let h = crate::helpers::jwt_header(token);
    let kid = h["kid"].as_str().expect("kid");
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("the kid is published");
    assert_eq!(jwk["alg"], h["alg"], "the key's alg is the token's");
    let b = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(v.as_str().expect("str"))
            .expect("base64url")
    };
    let opts = || {
        Some(VerificationOptions {
            allowed_issuers: Some(std::collections::HashSet::from([
                crate::helpers::ISSUER.to_owned()
            ])),
            ..Default::default()
        })
    };
    let alg = h["alg"].as_str().expect("alg").to_owned();
    match (alg.as_str(), jwk["kty"].as_str()) {
        ("ES256", Some("EC")) => {
            assert_eq!(jwk["crv"], "P-256");
            let mut point = vec![4u8];
            point.extend(b(&jwk["x"]));
            point.extend(b(&jwk["y"]));
            ES256PublicKey::from_bytes(&point)
                .expect("P-256 key")
                .verify_token::<serde_json::Value>(token, opts())
                .expect("ES256 signature");
        }
        ("EdDSA", Some("OKP")) => {
            assert_eq!(jwk["crv"], "Ed25519");
            Ed25519PublicKey::from_bytes(&b(&jwk["x"]))
                .expect("Ed25519 key")
                .verify_token::<serde_json::Value>(token, opts())
                .expect("EdDSA signature");
        }
        ("RS256", Some("RSA")) => {
            RS256PublicKey::from_components(&b(&jwk["n"]), &b(&jwk["e"]))
                .expect("RSA key")
                .verify_token::<serde_json::Value>(token, opts())
                .expect("RS256 signature");
        }
        other => panic!("unexpected algorithm and key type {other:?}"),
    }
    alg
}

async fn each_client_gets_tokens_signed_with_its_algorithm(backend: Backend) {
    let app = TestApp::spawn_with(backend, ALGORITHM_CLIENTS).await;
    let jwks: serde_json::Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("jwks");
    let mut kty: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kty"].as_str().expect("kty"))
        .collect();
    kty.sort_unstable();
    assert_eq!(kty, ["EC", "OKP", "RSA"], "one key per algorithm in use");
    let d: serde_json::Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .expect("discovery");
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256", "ES256", "EdDSA"])
    );

    for (client, want) in [("es", "ES256"), ("ed", "EdDSA"), ("rsa", "RS256")] {
        let email = format!("{client}@example.com");
        app.activated_user(&email).await;
        let r = app
            .post_form(
                "/oauth/token",
                &[
                    ("grant_type", "password"),
                    ("client_id", client),
                    ("username", &email),
                    ("password", crate::helpers::PASSWORD),
                    ("scope", "openid profile email"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{client}");
        let t: serde_json::Value = r.json().await.expect("json");
        let access = t["access_token"].as_str().expect("at");
        assert_eq!(verified_independently(&jwks, access), want, "{client}");
        assert_eq!(crate::helpers::jwt_header(access)["typ"], "at+jwt");
        let id = t["id_token"].as_str().expect("id token");
        assert_eq!(verified_independently(&jwks, id), want, "{client} ID token");

        // The server accepts its own tokens of every algorithm.
        let me = app.get_bearer("/oauth/userinfo", access).await;
        assert_eq!(me.status(), StatusCode::OK, "{client} userinfo");

        let r = app
            .post_form(
                "/oauth/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", client),
                    ("refresh_token", t["refresh_token"].as_str().expect("rt")),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{client} refresh");
        let t: serde_json::Value = r.json().await.expect("json");
        let access = t["access_token"].as_str().expect("at");
        assert_eq!(
            verified_independently(&jwks, access),
            want,
            "{client} refreshed"
        );

        // Algorithm confusion: the same token claiming another algorithm
        // (with this key's kid) is refused.
        use base64::Engine as _;
        let mut parts: Vec<String> = access.split('.').map(str::to_owned).collect();
        let mut h = crate::helpers::jwt_header(access);
        h["alg"] = serde_json::json!(if want == "RS256" { "ES256" } else { "RS256" });
        parts[0] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.to_string());
        let r = app.get_bearer("/account/me", &parts.join(".")).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{client} alg swap");
    }

    // A rotation makes a new key of each algorithm.
    let made = app
        .state
        .keys
        .rotate(
            app.state.clock.now(),
            Duration::from_secs(600),
            Duration::from_secs(900),
        )
        .await
        .expect("rotate");
    let mut algs: Vec<&str> = made.iter().map(|k| k.alg).collect();
    algs.sort_unstable();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
}
both!(each_client_gets_tokens_signed_with_its_algorithm);

async fn a_new_algorithm_in_a_running_deployment_is_published_before_it_signs(backend: Backend) {
    let db = Arc::new(TestDb::new(backend).await);
    // A deployment with RS256 keys only, whose JWKS relying parties cache.
    let before = TestApp::spawn_on(db.clone(), "", None).await;
    let cached: Vec<String> = served_keys(&before)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    drop(before);

    // The operator adds a client that signs ES256, and restarts.
    let es = "[[clients]]\nid = \"es\"\ngrant_types = [\"password\", \"refresh_token\"]\nsigning_alg = \"ES256\"\n";
    let app = TestApp::spawn_on(db.clone(), es, None).await;
    let jwks: serde_json::Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .expect("jwks");
    let ec_kid = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kty"] == "EC")
        .expect("the ES256 key is published at once")["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    app.activated_user("newalg@example.com").await;
    let login = || async {
        let r = app
            .post_form(
                "/oauth/token",
                &[
                    ("grant_type", "password"),
                    ("client_id", "es"),
                    ("username", "newalg@example.com"),
                    ("password", crate::helpers::PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let t: serde_json::Value = r.json().await.expect("json");
        crate::helpers::jwt_header(t["access_token"].as_str().expect("at"))
    };
    let h = login().await;
    assert_eq!(
        h["alg"], "RS256",
        "until every cached JWKS can hold the new key"
    );
    assert!(cached.contains(&h["kid"].as_str().expect("kid").to_owned()));

    // jwks_max_age (10 min) + the replicas' 30 s reload later, it signs.
    app.advance(Duration::from_secs(11 * 60));
    let h = login().await;
    assert_eq!(h["alg"], "ES256");
    assert_eq!(h["kid"], ec_kid.as_str());
    drop(app);

    // The client is removed again: a rotation retires the ES256 key, which
    // stays published while its tokens may live, and makes no new one.
    let app = TestApp::spawn_on(db, "", None).await;
    app.advance(Duration::from_secs(11 * 60));
    let made = app
        .state
        .keys
        .rotate(
            app.state.clock.now(),
            Duration::from_secs(600),
            Duration::from_secs(900),
        )
        .await
        .expect("rotate");
    assert_eq!(made.iter().map(|k| k.alg).collect::<Vec<_>>(), ["RS256"]);
    let infos = app
        .state
        .keys
        .list(app.state.clock.now(), Duration::from_secs(900))
        .await
        .expect("list");
    let ec = infos
        .iter()
        .find(|k| k.kid == ec_kid)
        .expect("still listed");
    assert!(ec.retired_at.is_some(), "retired");
    assert_eq!(ec.state, "published", "published while its tokens may live");
}
both!(a_new_algorithm_in_a_running_deployment_is_published_before_it_signs);
