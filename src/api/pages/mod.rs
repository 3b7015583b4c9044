//! The hosted pages: server-rendered HTML for browser login (RFC 6749
//! §4.1), registration, activation, password reset and logout. They call
//! the same use cases as the JSON API, with the same limits and answers;
//! their errors are pages, not JSON.
//!
//! Every form carries a CSRF token that must equal the browser's CSRF
//! cookie (double submit; the cookie is `__Host-` prefixed and SameSite
//! over https), and a cross-site `Origin` is refused.

mod account;
mod login;
mod logout;
mod views;

use poem::http::{HeaderValue, StatusCode, header};
use poem::web::Form;
use poem::{Request, Response, Route, get};
use subtle::ConstantTimeEq as _;

use crate::app::AppState;
use crate::config::Settings;
use crate::error::Error;
use views::{MessagePage, Render as _};

/// Adds the page routes to `route`, beside the API.
pub fn mount(route: Route) -> Route {
    route
        .at(
            "/oauth/authorize",
            get(login::authorize).post(login::authorize_post),
        )
        .at("/login", get(login::show).post(login::submit))
        .at(
            "/register",
            get(account::register_form).post(account::register),
        )
        .at(
            "/activate",
            get(account::activate_form).post(account::activate),
        )
        .at(
            "/password/forgot",
            get(account::forgot_form).post(account::forgot),
        )
        .at(
            "/password/reset",
            get(account::reset_form).post(account::reset),
        )
        .at("/oauth/logout", get(logout::show).post(logout::submit))
        .at("/assets/pages.css", get(stylesheet))
}

#[poem::handler]
fn stylesheet() -> Response {
    Response::builder()
        .content_type("text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .body(include_str!("../../../assets/pages.css"))
}

/// The state every page handler needs.
fn state(req: &Request) -> &AppState {
    req.data::<AppState>()
        .unwrap_or_else(|| unreachable!("routes() is always served with the state"))
}

/// Cookie names: `__Host-` needs `Secure`, which an http public URL (a
/// loopback development setup) cannot carry.
fn cookie_name(settings: &Settings, base: &str) -> String {
    if secure(settings) {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

fn secure(settings: &Settings) -> bool {
    settings.server.public_url.starts_with("https://")
}

/// The login session cookie's name.
fn session_cookie(settings: &Settings) -> String {
    cookie_name(settings, "gatehouse-session")
}

/// The CSRF cookie's name.
fn csrf_cookie(settings: &Settings) -> String {
    cookie_name(settings, "gatehouse-csrf")
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, path `/`, Secure over
/// https; `max_age` `None` deletes it.
fn set_cookie(settings: &Settings, name: &str, value: &str, max_age: Option<u64>) -> String {
    let age = max_age.unwrap_or(0);
    let secure = if secure(settings) { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={age}{secure}")
}

/// The value of cookie `name`, if the browser sent it once.
fn cookie(req: &Request, name: &str) -> Option<String> {
    let mut found = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned());
    let first = found.next();
    // Two cookies of one name (one planted by a sibling host): trust neither.
    if found.next().is_some() {
        return None;
    }
    first.filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The browser's CSRF token, and the `Set-Cookie` to issue one when it
/// has none (or one that is not ours) yet.
fn csrf(req: &Request, settings: &Settings) -> (String, Option<String>) {
    let name = csrf_cookie(settings);
    let oauth = &state(req).oauth;
    if let Some(v) = cookie(req, &name).filter(|v| oauth.csrf_token_valid(v)) {
        return (v, None);
    }
    let token = oauth.new_csrf_token();
    let set = set_cookie(settings, &name, &token, Some(24 * 3600));
    (token, Some(set))
}

/// Whether a form post is this browser's own: the CSRF field equals the
/// CSRF cookie, which is one of ours, and `Origin`, when sent, is the
/// server's.
fn same_site_post(req: &Request, settings: &Settings, token: &str) -> bool {
    let origin_ok = match req.headers().get(header::ORIGIN) {
        None => true,
        Some(o) => {
            o.as_bytes() == super::middleware::origin_of(&settings.server.public_url).as_bytes()
        }
    };
    let oauth = &state(req).oauth;
    let cookie_ok = cookie(req, &csrf_cookie(settings)).is_some_and(|c| {
        !token.is_empty()
            && bool::from(c.as_bytes().ct_eq(token.as_bytes()))
            && oauth.csrf_token_valid(&c)
    });
    origin_ok && cookie_ok
}

/// An HTML page answer.
fn html(status: StatusCode, body: String, cookies: Vec<String>) -> Response {
    let mut resp = Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(body);
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// A redirect (303 after a form post, 302 otherwise).
fn redirect(status: StatusCode, location: &str, cookies: Vec<String>) -> Response {
    let mut resp = Response::builder()
        .status(status)
        .header(header::CACHE_CONTROL, "no-store")
        .finish();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// A page that says something and links on.
fn message(
    settings: &Settings,
    status: StatusCode,
    heading: &str,
    text: &str,
    link: Option<(String, String)>,
) -> Response {
    let page = MessagePage {
        product: settings.mail.product_name.clone(),
        title: heading.to_owned(),
        heading: heading.to_owned(),
        message: text.to_owned(),
        link,
    };
    html(status, page.html(), Vec::new())
}

/// What a failed use case tells the person at the page, and the status.
/// Internal errors are logged once, here, and not described.
fn describe(e: &Error) -> (StatusCode, String) {
    match e {
        Error::Validation(fields) => (
            StatusCode::BAD_REQUEST,
            fields
                .iter()
                .map(|(field, problems)| format!("{field}: {}", problems.join("; ")))
                .collect::<Vec<_>>()
                .join(". "),
        ),
        Error::RateLimited { retry_after } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many attempts. Try again in {} seconds.",
                retry_after.as_secs().max(1)
            ),
        ),
        Error::Internal(err) => {
            tracing::error!(error = %err, "internal error on a page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side. Please try again.".into(),
            )
        }
        Error::Unavailable(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is unavailable right now. Please try again shortly.".into(),
        ),
        other => (StatusCode::BAD_REQUEST, capitalised(&other.to_string())),
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}

/// The `continue` target: only an authorization request on this server,
/// so that the pages cannot be used to redirect anywhere else.
fn continue_target(value: &str) -> Option<&str> {
    (value.starts_with("/oauth/authorize?") && !value.contains(['\r', '\n', '\\'])).then_some(value)
}

/// `value` percent-encoded for a query string.
fn query_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A form body: refused (as a page) when it is not a well-formed form.
type PageForm<T> = poem::Result<Form<T>>;

/// A form with its CSRF field.
trait Posted {
    /// The `csrf` field as posted.
    fn csrf(&self) -> &str;
}

/// Why a form post was not taken.
enum Refused {
    /// Not a readable form body.
    Unreadable,
    /// Failed the CSRF check.
    Forged,
}

impl Refused {
    fn page(self, settings: &Settings) -> Response {
        match self {
            Refused::Unreadable => unreadable(settings),
            Refused::Forged => forged(settings),
        }
    }
}

/// The form of a post that is this browser's own ([`same_site_post`]).
fn posted<T: Posted>(req: &Request, settings: &Settings, form: PageForm<T>) -> Result<T, Refused> {
    let Ok(Form(f)) = form else {
        return Err(Refused::Unreadable);
    };
    if !same_site_post(req, settings, f.csrf()) {
        return Err(Refused::Forged);
    }
    Ok(f)
}

/// The page for a form that could not be read.
fn unreadable(settings: &Settings) -> Response {
    message(
        settings,
        StatusCode::BAD_REQUEST,
        "That did not work",
        "The form could not be read. Go back, reload the page and try again.",
        None,
    )
}

/// The page for a post that failed the CSRF check.
fn forged(settings: &Settings) -> Response {
    message(
        settings,
        StatusCode::FORBIDDEN,
        "Please try again",
        "This form expired or did not come from this site. Reload the page and submit it again.",
        Some(("/login".into(), "Go to sign in".into())),
    )
}
