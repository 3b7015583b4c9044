//! Browser login: the authorization code flow with PKCE through the hosted
//! pages, as a browser and a relying party see it over HTTP.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::both;
use crate::helpers::{Backend, Browser, ISSUER, PASSWORD, TestApp, assert_error, pkce, query_of};

pub const REDIRECT: &str = "http://127.0.0.1:53682/callback";

/// Configured clients as an operator writes them.
const CLIENTS: &str = r#"
[[clients]]
id = "web"
redirect_uris = ["https://app.example/callback", "http://127.0.0.1/callback"]
post_logout_redirect_uris = ["https://app.example/bye"]

[[clients]]
id = "web2"
redirect_uris = ["https://app.example/callback"]

[[clients]]
id = "backend"
secret = "backend-secret-123456"
redirect_uris = ["https://backend.example/cb"]

[[clients]]
id = "legacy"
grant_types = ["password", "refresh_token"]
redirect_uris = ["https://legacy.example/cb"]
"#;

pub fn authorize_path(client: &str, redirect: &str, challenge: &str, extra: &str) -> String {
    format!(
        "/oauth/authorize?response_type=code&client_id={client}&redirect_uri={}\
         &scope=openid%20email%20profile&state=st-1&nonce=nonce-1\
         &code_challenge={challenge}&code_challenge_method=S256{extra}",
        form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    )
}

fn claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("payload");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("json")
}

async fn exchange(
    app: &TestApp,
    client: &str,
    code: &str,
    redirect: &str,
    verifier: &str,
) -> reqwest::Response {
    app.post_form(
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ],
    )
    .await
}

async fn a_browser_logs_in_with_the_code_flow_and_pkce(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sub = app.activated_user("browser@example.com").await;
    let browser = Browser::new(&app.base);
    let (verifier, challenge) = pkce();

    // Not logged in: the login page, which comes back to the request.
    let back = browser
        .authorize(
            &authorize_path("my-cli", REDIRECT, &challenge, ""),
            "browser@example.com",
            PASSWORD,
        )
        .await;
    assert!(back.starts_with(REDIRECT), "{back}");
    let q = query_of(&back);
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], ISSUER, "RFC 9207");
    let code = &q["code"];
    assert!(code.len() >= 43, "at least 256 bits");
    // The session cookie is HttpOnly and SameSite=Lax (http loopback
    // public URLs cannot carry Secure, so no __Host- prefix here).
    assert!(browser.cookie("gatehouse-session").is_some());

    let r = exchange(&app, "my-cli", code, REDIRECT, &verifier).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["cache-control"],
        "no-store",
        "token responses are not cached"
    );
    let t: Value = r.json().await.expect("json");
    let id = claims(t["id_token"].as_str().expect("an ID token"));
    assert_eq!(id["sub"], sub);
    assert_eq!(id["aud"], "my-cli");
    assert_eq!(id["nonce"], "nonce-1");
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert!(id["auth_time"].as_i64().is_some());
    assert!(id["sid"].as_str().is_some(), "sid of the login session");
    assert_eq!(
        claims(t["access_token"].as_str().expect("at"))["client_id"],
        "my-cli"
    );
    // The refresh family starts here.
    let rt = t["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let r = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", "my-cli"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let rt2 = r.json::<Value>().await.expect("json")["refresh_token"]
        .as_str()
        .expect("rt")
        .to_owned();

    // A second use of the code fails and revokes what the first one issued.
    let r = exchange(&app, "my-cli", code, REDIRECT, &verifier).await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let r = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt2),
                ("client_id", "my-cli"),
            ],
        )
        .await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
}
both!(a_browser_logs_in_with_the_code_flow_and_pkce);

async fn a_live_session_signs_into_a_second_app_unless_told_otherwise(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.activated_user("sso@example.com").await;
    let browser = Browser::new(&app.base);
    let (_, challenge) = pkce();
    browser
        .authorize(
            &authorize_path("first-app", REDIRECT, &challenge, ""),
            "sso@example.com",
            PASSWORD,
        )
        .await;

    // Single sign-on: straight back with a code.
    let r = browser
        .get(&authorize_path("second-app", REDIRECT, &challenge, ""))
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(query_of(&Browser::location(&r)).contains_key("code"));

    // prompt=login: the password again, and no loop after it.
    let r = browser
        .get(&authorize_path(
            "second-app",
            REDIRECT,
            &challenge,
            "&prompt=login",
        ))
        .await;
    assert!(
        Browser::location(&r).starts_with("/login"),
        "prompt=login asks again"
    );
    let back = browser
        .authorize(
            &authorize_path("second-app", REDIRECT, &challenge, "&prompt=login"),
            "sso@example.com",
            PASSWORD,
        )
        .await;
    assert!(query_of(&back).contains_key("code"), "{back}");

    // The marker the login page adds cannot be forged to skip prompt=login.
    for forged in ["&auth_after=0", "&auth_after=0.AAAAAAAAAAAAAAAAAAAAAA"] {
        let r = browser
            .get(&authorize_path(
                "second-app",
                REDIRECT,
                &challenge,
                &format!("&prompt=login{forged}"),
            ))
            .await;
        assert!(Browser::location(&r).starts_with("/login"), "{forged}");
    }

    // max_age exceeded: log in again.
    app.advance(Duration::from_secs(120));
    let r = browser
        .get(&authorize_path(
            "second-app",
            REDIRECT,
            &challenge,
            "&max_age=60",
        ))
        .await;
    assert!(Browser::location(&r).starts_with("/login"));
    let r = browser
        .get(&authorize_path(
            "second-app",
            REDIRECT,
            &challenge,
            "&max_age=600",
        ))
        .await;
    assert!(query_of(&Browser::location(&r)).contains_key("code"));

    // prompt=none without a session: login_required, to the client.
    let stranger = Browser::new(&app.base);
    let r = stranger
        .get(&authorize_path(
            "second-app",
            REDIRECT,
            &challenge,
            "&prompt=none",
        ))
        .await;
    let q = query_of(&Browser::location(&r));
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "st-1");
    assert_eq!(q["iss"], ISSUER);
}
both!(a_live_session_signs_into_a_second_app_unless_told_otherwise);

#[tokio::test]
async fn untrusted_requests_are_shown_and_the_rest_are_redirected_with_errors() {
    let app = TestApp::spawn_with(Backend::Sqlite, CLIENTS).await;
    let browser = Browser::new(&app.base);
    let (_, challenge) = pkce();
    // Unknown client, unregistered or look-alike redirect URIs: a page,
    // never a redirect.
    for path in [
        authorize_path("nobody", "https://app.example/callback", &challenge, ""),
        authorize_path("web", "https://evil.example/callback", &challenge, ""),
        authorize_path("web", "https://app.example/callback/../x", &challenge, ""),
        authorize_path("web", "https://app.example/callback#frag", &challenge, ""),
        "/oauth/authorize?response_type=code&client_id=web".to_owned(),
    ] {
        let r = browser.get(&path).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(r.headers().get("location").is_none(), "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("text/html"),
            "an HTML page, not JSON"
        );
    }
    // A registered loopback URI matches on any port (RFC 8252 §7.3).
    let r = browser
        .get(&authorize_path(
            "web",
            "http://127.0.0.1:61000/callback",
            &challenge,
            "",
        ))
        .await;
    assert!(Browser::location(&r).starts_with("/login"));

    // Trusted client and redirect URI: errors go back to it with state and iss.
    let cb = "https://app.example/callback";
    for (path, error) in [
        (
            authorize_path("web", cb, &challenge, "").replace("&code_challenge_method=S256", ""),
            "invalid_request",
        ),
        (
            authorize_path("web", cb, &challenge, "").replace("S256", "plain"),
            "invalid_request",
        ),
        (
            authorize_path("web", cb, "", "").replace("&code_challenge=", "&x="),
            "invalid_request",
        ),
        (
            authorize_path("web", cb, &challenge, "")
                .replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            authorize_path("web", cb, &challenge, "").replace("scope=openid", "scope=admin"),
            "invalid_scope",
        ),
        (
            authorize_path("legacy", "https://legacy.example/cb", &challenge, ""),
            "unauthorized_client",
        ),
    ] {
        let r = browser.get(&path).await;
        assert_eq!(r.status(), StatusCode::FOUND, "{path}");
        let to = Browser::location(&r);
        let q = query_of(&to);
        assert_eq!(q["error"], error, "{path}");
        assert_eq!(q["state"], "st-1");
        assert_eq!(q["iss"], ISSUER);
    }

    // The password grant is for clients that list it.
    app.activated_user("pw@example.com").await;
    let r = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "password"),
                ("client_id", "web"),
                ("username", "pw@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_error(r, StatusCode::BAD_REQUEST, "unauthorized_client").await;
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_redirect_uri_verifier_and_minute() {
    let app = TestApp::spawn_with(Backend::Sqlite, CLIENTS).await;
    app.activated_user("bound@example.com").await;
    let browser = Browser::new(&app.base);
    let cb = "https://app.example/callback";
    let (verifier, challenge) = pkce();
    let mut code = String::new();
    let next_code = async |b: &Browser| {
        let to = b
            .authorize(
                &authorize_path("web", cb, &challenge, ""),
                "bound@example.com",
                PASSWORD,
            )
            .await;
        query_of(&to)["code"].clone()
    };
    for (client, redirect, verifier_used, wait) in [
        (
            "web",
            cb,
            "wrong-verifier-wrong-verifier-wrong-verifier-1",
            0,
        ),
        ("web", "https://app.example/other", verifier.as_str(), 0),
        ("web2", cb, verifier.as_str(), 0),
        ("web", cb, verifier.as_str(), 61),
    ] {
        code = next_code(&browser).await;
        app.advance(Duration::from_secs(wait));
        let r = exchange(&app, client, &code, redirect, verifier_used).await;
        assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
    // A code spent on a failed exchange stays spent.
    let r = exchange(&app, "web", &code, cb, &verifier).await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // The confidential client authenticates at the token endpoint.
    let code = {
        let to = browser
            .authorize(
                &authorize_path("backend", "https://backend.example/cb", &challenge, ""),
                "bound@example.com",
                PASSWORD,
            )
            .await;
        query_of(&to)["code"].clone()
    };
    let r = exchange(
        &app,
        "backend",
        &code,
        "https://backend.example/cb",
        &verifier,
    )
    .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let code = query_of(
        &browser
            .authorize(
                &authorize_path("backend", "https://backend.example/cb", &challenge, ""),
                "bound@example.com",
                PASSWORD,
            )
            .await,
    )["code"]
        .clone();
    let r = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "backend"),
                ("client_secret", "backend-secret-123456"),
                ("code", &code),
                ("redirect_uri", "https://backend.example/cb"),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

async fn logout_ends_the_session_and_its_refresh_families(backend: Backend) {
    let app = TestApp::spawn_with(backend, CLIENTS).await;
    app.activated_user("bye@example.com").await;
    let browser = Browser::new(&app.base);
    let cb = "https://app.example/callback";
    let (verifier, challenge) = pkce();
    let to = browser
        .authorize(
            &authorize_path("web", cb, &challenge, ""),
            "bye@example.com",
            PASSWORD,
        )
        .await;
    let r = exchange(&app, "web", &query_of(&to)["code"], cb, &verifier).await;
    let t: Value = r.json().await.expect("json");
    let id_token = t["id_token"].as_str().expect("id token");
    let rt = t["refresh_token"].as_str().expect("rt");

    // An unregistered post-logout URI: a page, no redirect, still logged in.
    let r = browser
        .get(&format!(
            "/oauth/logout?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F"
        ))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());

    // Without a hint, a link alone does not sign anyone out: it asks.
    let (status, html) = browser.page("/oauth/logout").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Sign out"));

    let r = browser
        .get(&format!(
            "/oauth/logout?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye&state=s9"
        ))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(Browser::location(&r), "https://app.example/bye?state=s9");
    assert!(
        browser.cookie("gatehouse-session").is_none(),
        "cookie cleared"
    );
    // The session's refresh family is revoked...
    let r = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", "web"),
            ],
        )
        .await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // ...and the next authorization request asks for the password.
    let r = browser
        .get(&authorize_path("web", cb, &challenge, ""))
        .await;
    assert!(Browser::location(&r).starts_with("/login"));
}
both!(logout_ends_the_session_and_its_refresh_families);

#[tokio::test]
async fn rfc_8414_metadata_matches_openid_discovery() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let oidc: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .expect("json");
    let oauth: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(oidc, oauth);
    assert_eq!(
        oidc["authorization_endpoint"],
        format!("{ISSUER}/oauth/authorize")
    );
    assert_eq!(
        oidc["end_session_endpoint"],
        format!("{ISSUER}/oauth/logout")
    );
    assert_eq!(
        oidc["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        oidc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(oidc["authorization_response_iss_parameter_supported"], true);
}

#[tokio::test]
async fn swagger_ui_logs_in_with_the_docs_client_and_pkce() {
    let app = TestApp::spawn_with(Backend::Sqlite, CLIENTS).await;
    let html = app.get("/docs").await.text().await.expect("html");
    assert!(html.contains("usePkceWithAuthorizationCodeGrant: true"));
    assert!(html.contains("clientId: \"docs\""));
    assert!(html.contains(&format!("\"{ISSUER}/docs/oauth2-redirect.html\"")));
    let r = app.get("/docs/oauth2-redirect.html").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.expect("html").contains("OAuth2 Redirect"));
    let spec: Value = app.get("/openapi.json").await.json().await.expect("json");
    let flows = &spec["components"]["securitySchemes"]["oauth2"]["flows"];
    assert_eq!(
        flows["authorizationCode"]["authorizationUrl"],
        "/oauth/authorize"
    );
    assert_eq!(flows["authorizationCode"]["tokenUrl"], "/oauth/token");
    // The docs client exists beside the configured ones, for its own page only.
    let (_, challenge) = pkce();
    let browser = Browser::new(&app.base);
    let ok = browser
        .get(&authorize_path(
            "docs",
            &format!("{ISSUER}/docs/oauth2-redirect.html"),
            &challenge,
            "",
        ))
        .await;
    assert!(Browser::location(&ok).starts_with("/login"));
    let bad = browser
        .get(&authorize_path(
            "docs",
            "https://evil.example/cb",
            &challenge,
            "",
        ))
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

/// A code from a browser login for `client`, not yet exchanged.
async fn code_for(browser: &Browser, client: &str, challenge: &str, extra: &str) -> String {
    let to = browser
        .authorize(
            &authorize_path(client, REDIRECT, challenge, extra),
            "review@example.com",
            PASSWORD,
        )
        .await;
    query_of(&to)
        .remove("code")
        .unwrap_or_else(|| panic!("a code: {to}"))
}

async fn what_ends_a_session_ends_its_codes_and_cookies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.activated_user("review@example.com").await;
    let browser = Browser::new(&app.base);
    let (verifier, challenge) = pkce();

    // A code issued before logout is not exchanged after it.
    let first = code_for(&browser, "app", &challenge, "").await;
    let t: Value = exchange(&app, "app", &first, REDIRECT, &verifier)
        .await
        .json()
        .await
        .expect("json");
    let pending = code_for(&browser, "app", &challenge, "").await;
    let id_token = t["id_token"].as_str().expect("id token");
    let r = browser
        .get(&format!("/oauth/logout?id_token_hint={id_token}"))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "signed out");
    let r = exchange(&app, "app", &pending, REDIRECT, &verifier).await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // A password change ends every other browser session.
    let stolen = Browser::new(&app.base);
    code_for(&stolen, "app", &challenge, "").await;
    let bearer = app.login("review@example.com").await["access_token"]
        .as_str()
        .expect("at")
        .to_owned();
    let r = app
        .http
        .post(app.url("/account/password"))
        .bearer_auth(&bearer)
        .json(&serde_json::json!({"current_password": PASSWORD, "new_password": "another-Lantern-meadow-88"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = stolen
        .get(&authorize_path("app", REDIRECT, &challenge, ""))
        .await;
    assert!(
        Browser::location(&r).starts_with("/login"),
        "the old browser session is over"
    );
}
both!(what_ends_a_session_ends_its_codes_and_cookies);

#[tokio::test]
async fn a_replay_by_another_client_revokes_nothing_and_prompt_none_never_shows_a_page() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.activated_user("review@example.com").await;
    let browser = Browser::new(&app.base);
    let (verifier, challenge) = pkce();
    let code = code_for(&browser, "app", &challenge, "").await;
    let t: Value = exchange(&app, "app", &code, REDIRECT, &verifier)
        .await
        .json()
        .await
        .expect("json");
    // Someone else who saw the code: refused, and the owner's session lives.
    let r = exchange(&app, "someone-else", &code, REDIRECT, "x").await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let r = app
        .post_form(
            "/oauth/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "app"),
                ("refresh_token", t["refresh_token"].as_str().expect("rt")),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // max_age=0 comes back from the login page without looping.
    let fresh = Browser::new(&app.base);
    let to = fresh
        .authorize(
            &authorize_path("app", REDIRECT, &challenge, "&max_age=0"),
            "review@example.com",
            PASSWORD,
        )
        .await;
    assert!(query_of(&to).contains_key("code"), "{to}");

    // POST works as GET (OIDC Core §3.1.2.1).
    let r = fresh
        .post(
            "/oauth/authorize",
            &[
                ("response_type", "code"),
                ("client_id", "app"),
                ("redirect_uri", REDIRECT),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("state", "p1"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(query_of(&Browser::location(&r))["state"], "p1");

    // A disabled user's live session: prompt=none answers login_required.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    gatehouse::entity::users::Entity::update_many()
        .col_expr(
            gatehouse::entity::users::Column::Disabled,
            Expr::value(true),
        )
        .filter(gatehouse::entity::users::Column::EmailNormalized.eq("review@example.com"))
        .exec(&app.state.db)
        .await
        .expect("disable");
    let r = fresh
        .get(&authorize_path("app", REDIRECT, &challenge, "&prompt=none"))
        .await;
    assert_eq!(query_of(&Browser::location(&r))["error"], "login_required");

    // Control characters in a redirect URI: a page, never a redirect.
    let r = fresh
        .get(&authorize_path(
            "app",
            "http://127.0.0.1:9/x\r\nSet-Cookie:a=b",
            &challenge,
            "",
        ))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_login_marker_counts_for_ten_minutes_only() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.activated_user("review@example.com").await;
    let browser = Browser::new(&app.base);
    let (_, challenge) = pkce();
    // A marker fetched before logging in (anyone can get one).
    let r = browser
        .get(&authorize_path(
            "app",
            REDIRECT,
            &challenge,
            "&prompt=login",
        ))
        .await;
    let login = Browser::location(&r);
    let cont = query_of(&login)["continue"].clone();
    let marker = query_of(&cont)["auth_after"].clone();
    code_for(&browser, "app", &challenge, "").await;
    // Within its ten minutes it stands for "a login after then".
    app.advance(Duration::from_secs(11 * 60));
    let r = browser
        .get(&authorize_path(
            "app",
            REDIRECT,
            &challenge,
            &format!("&prompt=login&auth_after={}", query_encode(&marker)),
        ))
        .await;
    assert!(
        Browser::location(&r).starts_with("/login"),
        "an old marker does not count"
    );
}

fn query_encode(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}
