//! The hosted pages as a person uses them: the same answers, limits and
//! protections as the JSON API, shown as pages.

use reqwest::StatusCode;

use super::browser::{REDIRECT, authorize_path};
use crate::both;
use crate::helpers::{Backend, Browser, ISSUER, PASSWORD, TestApp, assert_error, pkce, query_of};

async fn the_login_page_answers_as_the_password_grant_does(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.activated_user("page@example.com").await;
    let browser = Browser::new(&app.base);
    let (status, html) = browser.page("/login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<label for=\"password\">"), "labelled fields");
    let csrf = Browser::csrf_of(&html);

    // Wrong password and unknown account: the same page, the same words.
    let mut answers = Vec::new();
    for user in ["page@example.com", "nobody@example.com"] {
        let r = browser
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("continue", ""),
                    ("username", user),
                    ("password", "wrong-password-1"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("text/html")
        );
        let html = r.text().await.expect("html");
        let alert = html
            .split("role=\"alert\"")
            .nth(1)
            .expect("an error shown")
            .split("</div>")
            .next()
            .expect("text")
            .to_owned();
        answers.push(alert);
    }
    assert_eq!(answers[0], answers[1], "no enumeration");
    assert!(answers[0].contains("incorrect"));

    // Without the CSRF token (another site's form): refused, nothing checked.
    let r = browser
        .post(
            "/login",
            &[
                ("csrf", "forged"),
                ("username", "page@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(browser.cookie("gatehouse-session").is_none());
    // A cross-site Origin is refused even with the token.
    let r = reqwest::Client::new()
        .post(app.url("/login"))
        .header("origin", "https://evil.example")
        .header("cookie", format!("gatehouse-csrf={csrf}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "page@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // `continue` goes only to an authorization request here.
    let r = browser
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("continue", "https://evil.example/"),
                ("username", "page@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "a signed-in page, no redirect");
    assert!(r.headers().get("location").is_none());

    // The pages' CSP allows no script at all.
    let r = browser.get("/login").await;
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
}
both!(the_login_page_answers_as_the_password_grant_does);

#[tokio::test]
async fn the_login_page_shares_the_password_grants_throttle() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        "[rate_limits]\nlogin_failures_per_account_ip = \"2/1h\"\n",
    )
    .await;
    app.activated_user("slow@example.com").await;
    let browser = Browser::new(&app.base);
    let (_, html) = browser.page("/login").await;
    let csrf = Browser::csrf_of(&html);
    for _ in 0..2 {
        let r = browser
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("username", "slow@example.com"),
                    ("password", "wrong-password-1"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    // Spent on the page: the API's password grant from here is throttled too
    // (it answers as a wrong password does).
    let r = app.password_grant("slow@example.com", PASSWORD).await;
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

#[tokio::test]
async fn a_new_user_registers_activates_and_signs_in_through_the_pages() {
    let app = TestApp::spawn_with_mail(Backend::Sqlite, "").await;
    let browser = Browser::new(&app.base);
    let (_, challenge) = pkce();
    let authorize = authorize_path("my-cli", REDIRECT, &challenge, "");
    let r = browser.get(&authorize).await;
    let login = Browser::location(&r);
    let cont = query_of(&login)["continue"].clone();

    let (status, html) = browser
        .page(&format!(
            "/register?continue={}",
            form_urlencoded::byte_serialize(cont.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let csrf = Browser::csrf_of(&html);
    let r = browser
        .post(
            "/register",
            &[
                ("csrf", &csrf),
                ("continue", &cont),
                ("email", "newcomer@example.com"),
                ("password", PASSWORD),
                ("given_name", "Nia"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let activate = Browser::location(&r);
    assert!(activate.starts_with("/activate"), "{activate}");

    let (text, _) = app
        .mail
        .as_ref()
        .expect("mail")
        .wait_for("newcomer@example.com", "activation code")
        .await;
    let code = crate::helpers::code_in(&text);
    let (_, html) = browser.page(&activate).await;
    assert!(html.contains("6-digit code"));
    let r = browser
        .post(
            "/activate",
            &[
                ("csrf", &Browser::csrf_of(&html)),
                ("continue", &cont),
                ("email", "newcomer@example.com"),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let login = Browser::location(&r);
    assert!(login.contains("notice=activated"), "{login}");
    let (_, html) = browser.page(&login).await;
    assert!(html.contains("Your account is active"));
    let to = browser
        .authorize(&authorize, "newcomer@example.com", PASSWORD)
        .await;
    assert!(query_of(&to).contains_key("code"));
}

#[tokio::test]
async fn forgot_and_reset_work_through_the_pages_without_telling_who_exists() {
    let app = TestApp::spawn_with_mail(Backend::Sqlite, "").await;
    app.activated_user("forgetful@example.com").await;
    let browser = Browser::new(&app.base);
    let (_, html) = browser.page("/password/forgot").await;
    let csrf = Browser::csrf_of(&html);
    let mut pages = Vec::new();
    for email in ["forgetful@example.com", "stranger@example.com"] {
        let r = browser
            .post("/password/forgot", &[("csrf", &csrf), ("email", email)])
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        pages.push(r.text().await.expect("html").replace(email, ""));
    }
    assert_eq!(
        pages[0], pages[1],
        "the same page for known and unknown emails"
    );

    let (text, _) = app
        .mail
        .as_ref()
        .expect("mail")
        .wait_for("forgetful@example.com", "token=")
        .await;
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/password/reset?token="))
        .expect("a reset link")
        .to_owned();
    assert!(link.starts_with(ISSUER), "{link}");
    let path = link.trim_start_matches(ISSUER);
    let (status, html) = browser.page(path).await;
    assert_eq!(status, StatusCode::OK);
    let token = query_of(path)["token"].clone();
    let csrf = Browser::csrf_of(&html);
    let r = browser
        .post(
            "/password/reset",
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("password", "new-Lantern-meadow-77"),
                ("password_confirm", "different-77-xyz"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = browser
        .post(
            "/password/reset",
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("password", "new-Lantern-meadow-77"),
                ("password_confirm", "new-Lantern-meadow-77"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(Browser::location(&r), "/login?notice=reset");
    let r = app
        .password_grant("forgetful@example.com", "new-Lantern-meadow-77")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_pages_work_beside_configured_cors_origins() {
    // Browsers send `Origin` on same-origin form posts too: the server's
    // own origin must pass the CORS layer that guards the other origins.
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        "[server]\ncors_origins = [\"https://spa.example\"]\n",
    )
    .await;
    app.activated_user("cors@example.com").await;
    let browser = Browser::new(&app.base);
    let (_, html) = browser.page("/login").await;
    let csrf = Browser::csrf_of(&html);
    let post = |origin: &'static str| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .post(app.url("/login"))
            .header("origin", origin)
            .header("cookie", format!("gatehouse-csrf={csrf}"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("username", "cors@example.com"),
                ("password", PASSWORD),
            ])
            .send()
    };
    let r = post(ISSUER).await.expect("request");
    assert_eq!(r.status(), StatusCode::OK, "signed in from our own origin");
    assert!(r.headers().get("set-cookie").is_some());
    let r = post("https://spa.example").await.expect("request");
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "a CORS origin is not the pages' origin"
    );
}

#[tokio::test]
async fn a_planted_csrf_cookie_is_not_ours() {
    // Over plain http a sibling host can set cookies: a token it made up
    // (even one of the right shape) is refused.
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.activated_user("planted@example.com").await;
    let planted = "AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA";
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(app.url("/login"))
        .header("cookie", format!("gatehouse-csrf={planted}"))
        .form(&[
            ("csrf", planted),
            ("username", "planted@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn cookies_frames_and_markup_are_locked_down() {
    // Over https: `__Host-` cookies, Secure, HttpOnly, SameSite=Lax, Path=/.
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        "[server]\npublic_url = \"https://id.example\"\n",
    )
    .await;
    app.activated_user("locked@example.com").await;
    let browser = Browser::new(&app.base);
    let r = browser.get("/login").await;
    let csrf_cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        csrf_cookie.starts_with("__Host-gatehouse-csrf="),
        "{csrf_cookie}"
    );
    for attr in ["; Path=/", "; HttpOnly", "; SameSite=Lax", "; Secure"] {
        assert!(csrf_cookie.contains(attr), "{attr} in {csrf_cookie}");
    }
    // Framing refused on every page.
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .expect("ascii")
            .contains("frame-ancestors 'none'")
    );
    let html = r.text().await.expect("html");
    let token = Browser::csrf_of(&html);
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(app.url("/login"))
        .header("cookie", format!("__Host-gatehouse-csrf={token}"))
        .header("origin", "https://id.example")
        .form(&[
            ("csrf", token.as_str()),
            ("username", "locked@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let session = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        session.starts_with("__Host-gatehouse-session="),
        "{session}"
    );
    for attr in [
        "; Path=/",
        "; HttpOnly",
        "; SameSite=Lax",
        "; Secure",
        "; Max-Age=43200",
    ] {
        assert!(session.contains(attr), "{attr} in {session}");
    }

    // Markup in what the page echoes is escaped, in text and attributes.
    let evil = "\"><script>alert(1)</script><a href=\"x";
    let (_, html) = Browser::new(&app.base)
        .page(&format!(
            "/login?login_hint={}",
            form_urlencoded::byte_serialize(evil.as_bytes()).collect::<String>()
        ))
        .await;
    assert!(!html.contains("<script>alert(1)</script>"), "escaped");
    assert!(html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"));
}
