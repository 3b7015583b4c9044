//! `GET`, `POST /oauth/logout`: OIDC RP-Initiated Logout 1.0. Ends the
//! browser's login session and revokes the refresh families started from
//! it; then back to a registered `post_logout_redirect_uri`, or a page.

use poem::http::StatusCode;
use poem::{Request, Response};
use serde::Deserialize;

use super::views::{LogoutPage, Render as _};
use super::{
    PageForm, Posted, cookie, csrf, html, message, posted, redirect, session_cookie, set_cookie,
    state,
};
use crate::app::AppState;
use crate::config::Settings;

/// The logout parameters (query or form).
#[derive(Debug, Deserialize, Default)]
pub struct LogoutParams {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id_token_hint: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    post_logout_redirect_uri: String,
    #[serde(default)]
    state: String,
}

impl Posted for LogoutParams {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Where to go afterwards, checked, and the hint's `sid`: `Err` says why
/// the request cannot go on (shown on a page, never redirected).
fn destination(
    state: &AppState,
    settings: &Settings,
    p: &LogoutParams,
) -> Result<(Option<String>, Option<String>), &'static str> {
    let hint = Some(p.id_token_hint.as_str())
        .filter(|h| !h.is_empty())
        .map(|h| state.oauth.id_token_hint(h));
    let (hinted_client, sid) = match hint {
        Some(Some((aud, sid))) => (Some(aud), sid),
        Some(None) => return Err("The id_token_hint was not issued here."),
        None => (None, None),
    };
    let client_id = match (
        Some(p.client_id.as_str()).filter(|c| !c.is_empty()),
        hinted_client,
    ) {
        (Some(c), Some(h)) if c != h => {
            return Err("client_id and id_token_hint name different applications.");
        }
        (Some(c), _) => Some(c.to_owned()),
        (None, h) => h,
    };
    if p.post_logout_redirect_uri.is_empty() {
        return Ok((None, sid));
    }
    let allowed = client_id
        .as_deref()
        .and_then(|c| crate::clients::by_id(settings, c))
        .is_some_and(|c| c.accepts_post_logout_redirect(&p.post_logout_redirect_uri));
    if !allowed {
        return Err("The post_logout_redirect_uri is not registered for this application.");
    }
    let mut to = p.post_logout_redirect_uri.clone();
    if !p.state.is_empty() {
        to.push(if to.contains('?') { '&' } else { '?' });
        to.push_str("state=");
        to.extend(form_urlencoded::byte_serialize(p.state.as_bytes()));
    }
    Ok((Some(to), sid))
}

fn refused(settings: &Settings, why: &str) -> Response {
    message(
        settings,
        StatusCode::BAD_REQUEST,
        "This sign-out request cannot continue",
        why,
        None,
    )
}

/// Ends the session and answers with the redirect or the signed-out page.
async fn finish(
    req: &Request,
    state: &AppState,
    settings: &Settings,
    to: Option<String>,
) -> Response {
    let name = session_cookie(settings);
    if let Some(value) = cookie(req, &name)
        && let Ok(Some(session)) = state.oauth.login_session(&value).await
    {
        match state.oauth.log_out(session.id).await {
            Ok(revoked) => {
                tracing::info!(user.id = %session.user_id, revoked, "logged out");
            }
            Err(e) => {
                let (status, text) = super::describe(&e);
                return message(settings, status, "Sign-out did not finish", &text, None);
            }
        }
    }
    let clear = set_cookie(settings, &name, "", None);
    match to {
        Some(to) => redirect(StatusCode::SEE_OTHER, &to, vec![clear]),
        None => {
            let mut resp = message(
                settings,
                StatusCode::OK,
                "You are signed out",
                "You can close this page.",
                None,
            );
            if let Ok(v) = poem::http::HeaderValue::from_str(&clear) {
                resp.headers_mut().append(poem::http::header::SET_COOKIE, v);
            }
            resp
        }
    }
}

/// `GET /oauth/logout`: with an ID token of the current session, signs out
/// at once; otherwise asks first (a link alone must not sign anyone out).
#[poem::handler]
pub async fn show(req: &Request) -> Response {
    let state = state(req);
    let settings = state.live.get();
    let p: LogoutParams = req.params().unwrap_or_default();
    let (to, sid) = match destination(state, &settings, &p) {
        Ok(d) => d,
        Err(why) => return refused(&settings, why),
    };
    let session = match cookie(req, &session_cookie(&settings)) {
        Some(v) => state.oauth.login_session(&v).await.ok().flatten(),
        None => None,
    };
    let Some(session) = session else {
        // Nothing to end.
        return finish(req, state, &settings, to).await;
    };
    if sid.is_some_and(|s| s == session.id.to_string()) {
        return finish(req, state, &settings, to).await;
    }
    let (token, set) = csrf(req, &settings);
    let page = LogoutPage {
        product: settings.mail.product_name.clone(),
        title: "Sign out".into(),
        csrf: token,
        id_token_hint: p.id_token_hint,
        client_id: p.client_id,
        post_logout_redirect_uri: p.post_logout_redirect_uri,
        state: p.state,
    };
    html(StatusCode::OK, page.html(), set.into_iter().collect())
}

/// `POST /oauth/logout`: the confirmation form.
#[poem::handler]
pub async fn submit(req: &Request, form: PageForm<LogoutParams>) -> Response {
    let state = state(req);
    let settings = state.live.get();
    let p = match posted(req, &settings, form) {
        Ok(f) => f,
        Err(refused) => return refused.page(&settings),
    };
    match destination(state, &settings, &p) {
        Ok((to, _)) => finish(req, state, &settings, to).await,
        Err(why) => refused(&settings, why),
    }
}
