//! `GET /oauth/authorize` and the login page it sends browsers to.

use poem::http::StatusCode;
use poem::{Request, Response};
use serde::Deserialize;

use super::views::{LoginPage, Render as _};
use super::{
    PageForm, Posted, continue_target, cookie, csrf, describe, html, message, posted, query_encode,
    redirect, session_cookie, set_cookie, state,
};
use crate::oauth::authorize::{AuthorizeError, Outcome, parse};

/// `GET /oauth/authorize`: RFC 6749 §4.1.1 / OIDC Core §3.1.2.1.
#[poem::handler]
pub async fn authorize(req: &Request) -> Response {
    let query = req.uri().query().unwrap_or_default();
    let params = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    answer(req, params).await
}

/// `POST /oauth/authorize` (OIDC Core §3.1.2.1: the same parameters as a
/// form body).
#[poem::handler]
pub async fn authorize_post(req: &Request, body: poem::Body) -> Response {
    let bytes = body.into_bytes().await.unwrap_or_default();
    let params = form_urlencoded::parse(&bytes).into_owned().collect();
    answer(req, params).await
}

/// Checks the request, then answers with a code (a live login session),
/// the login page, or an error.
async fn answer(req: &Request, params: Vec<(String, String)>) -> Response {
    let state = state(req);
    let settings = state.live.get();
    let request = match parse(&settings, &settings.server.public_url, &params) {
        Ok(r) => r,
        Err(AuthorizeError::Untrusted(why)) => {
            return message(
                &settings,
                StatusCode::BAD_REQUEST,
                "This sign-in request cannot continue",
                &format!(
                    "{} Go back to the application and try again.",
                    super::capitalised(&why)
                ),
                None,
            );
        }
        Err(AuthorizeError::Redirect(r)) => {
            return redirect(StatusCode::FOUND, &r.url(), Vec::new());
        }
    };
    let session = match cookie(req, &session_cookie(&settings)) {
        Some(c) => match state.oauth.login_session(&c).await {
            Ok(s) => s,
            Err(e) => return error_page(&settings, &e),
        },
        None => None,
    };
    match state
        .oauth
        .authorize(&request, session.as_ref(), crate::api::client_ip(req))
        .await
    {
        Ok(Outcome::Redirect(r)) => redirect(StatusCode::FOUND, &r.url(), Vec::new()),
        Ok(Outcome::Login) => {
            // Come back to the same request; a forced login (prompt=login,
            // max_age) comes back with a signed "a login after now" so it
            // does not loop.
            let mut back: Vec<(String, String)> = params
                .into_iter()
                .filter(|(k, _)| k != "auth_after")
                .collect();
            if request.needs_login_marker() {
                back.push(("auth_after".into(), state.oauth.login_marker()));
            }
            let back = format!(
                "/oauth/authorize?{}",
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(back)
                    .finish()
            );
            let mut to = format!("/login?continue={}", query_encode(&back));
            if let Some(hint) = &request.login_hint {
                to.push_str(&format!("&login_hint={}", query_encode(hint)));
            }
            redirect(StatusCode::FOUND, &to, Vec::new())
        }
        Err(e) => error_page(&settings, &e),
    }
}

fn error_page(settings: &crate::config::Settings, e: &crate::error::Error) -> Response {
    let (status, text) = describe(e);
    message(settings, status, "Something went wrong", &text, None)
}

/// The login form's query.
#[derive(Debug, Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default, rename = "continue")]
    continue_to: String,
    #[serde(default)]
    login_hint: String,
    #[serde(default)]
    notice: Option<String>,
}

/// What the login form posts.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default, rename = "continue")]
    continue_to: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

impl Posted for LoginForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn login_page(
    req: &Request,
    settings: &crate::config::Settings,
    status: StatusCode,
    continue_to: &str,
    login_hint: &str,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let (token, set) = csrf(req, settings);
    let continue_to = continue_target(continue_to).unwrap_or_default();
    let page = LoginPage {
        product: settings.mail.product_name.clone(),
        title: "Sign in".into(),
        csrf: token,
        continue_to: continue_to.to_owned(),
        continue_q: query_encode(continue_to),
        login_hint: login_hint.chars().take(254).collect(),
        error,
        notice,
    };
    html(status, page.html(), set.into_iter().collect())
}

/// `GET /login`.
#[poem::handler]
pub async fn show(req: &Request) -> Response {
    let settings = state(req).live.get();
    let q: LoginQuery = req.params().unwrap_or_default();
    let notice = match q.notice.as_deref() {
        Some("activated") => Some("Your account is active. Sign in to continue.".to_owned()),
        Some("reset") => Some("Your password was changed. Sign in with the new one.".to_owned()),
        _ => None,
    };
    login_page(
        req,
        &settings,
        StatusCode::OK,
        &q.continue_to,
        &q.login_hint,
        None,
        notice,
    )
}

/// `POST /login`: the one password check, then the login session cookie
/// and back to the authorization request.
#[poem::handler]
pub async fn submit(req: &Request, form: PageForm<LoginForm>) -> Response {
    let state = state(req);
    let settings = state.live.get();
    let form = match posted(req, &settings, form) {
        Ok(f) => f,
        Err(refused) => return refused.page(&settings),
    };
    let ip = crate::api::client_ip(req);
    match state.oauth.log_in(&form.username, &form.password, ip).await {
        Ok((value, _)) => {
            let ttl = settings.accounts.login_session_ttl.as_secs();
            let cookie = set_cookie(&settings, &session_cookie(&settings), &value, Some(ttl));
            match continue_target(&form.continue_to) {
                Some(to) => redirect(StatusCode::SEE_OTHER, to, vec![cookie]),
                None => {
                    let mut resp = message(
                        &settings,
                        StatusCode::OK,
                        "You are signed in",
                        "You can close this page and go back to the application.",
                        None,
                    );
                    if let Ok(v) = poem::http::HeaderValue::from_str(&cookie) {
                        resp.headers_mut().append(poem::http::header::SET_COOKIE, v);
                    }
                    resp
                }
            }
        }
        Err(e) => {
            let (status, text) = describe(&e);
            login_page(
                req,
                &settings,
                status,
                &form.continue_to,
                &form.username,
                Some(text),
                None,
            )
        }
    }
}
