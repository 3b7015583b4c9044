//! The account pages: register, activate (the emailed code), forgot and
//! reset password. The same use cases as `/account/*`, so the same limits
//! and the same non-enumerating answers.

use poem::http::StatusCode;
use poem::{Request, Response};
use serde::Deserialize;

use super::views::{ActivatePage, ForgotPage, RegisterPage, Render as _, ResetPage};
use super::{
    PageForm, Posted, continue_target, csrf, describe, html, message, posted, query_encode,
    redirect, state,
};
use crate::accounts::Registration;
use crate::config::Settings;

/// Query of the account pages.
#[derive(Debug, Deserialize, Default)]
pub struct PageQuery {
    #[serde(default, rename = "continue")]
    continue_to: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    sent: Option<String>,
}

/// What the account forms post (each uses some of it).
#[derive(Debug, Deserialize, Default)]
pub struct AccountForm {
    #[serde(default)]
    csrf: String,
    #[serde(default, rename = "continue")]
    continue_to: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    given_name: String,
    #[serde(default)]
    family_name: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    action: String,
}

impl Posted for AccountForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn target(value: &str) -> (String, String) {
    let to = continue_target(value).unwrap_or_default();
    (to.to_owned(), query_encode(to))
}

fn register_page(
    req: &Request,
    settings: &Settings,
    status: StatusCode,
    f: &AccountForm,
    error: Option<String>,
) -> Response {
    let (token, set) = csrf(req, settings);
    let (continue_to, continue_q) = target(&f.continue_to);
    let page = RegisterPage {
        product: settings.mail.product_name.clone(),
        title: "Create your account".into(),
        csrf: token,
        continue_to,
        continue_q,
        email: f.email.clone(),
        username: f.username.clone(),
        given_name: f.given_name.clone(),
        family_name: f.family_name.clone(),
        min_password: settings.accounts.password_min_length,
        error,
    };
    html(status, page.html(), set.into_iter().collect())
}

/// `GET /register`.
#[poem::handler]
pub async fn register_form(req: &Request) -> Response {
    let settings = state(req).live.get();
    let q: PageQuery = req.params().unwrap_or_default();
    let f = AccountForm {
        continue_to: q.continue_to,
        email: q.email,
        ..AccountForm::default()
    };
    register_page(req, &settings, StatusCode::OK, &f, None)
}

/// `POST /register`: creates the account; then the activation page (or
/// sign-in, when activation is off).
#[poem::handler]
pub async fn register(req: &Request, form: PageForm<AccountForm>) -> Response {
    let state = state(req);
    let settings = state.live.get();
    let f = match posted(req, &settings, form) {
        Ok(f) => f,
        Err(refused) => return refused.page(&settings),
    };
    let some = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
    let input = Registration {
        email: some(&f.email),
        password: some(&f.password),
        username: some(&f.username),
        given_name: some(&f.given_name),
        family_name: some(&f.family_name),
        phone_number: None,
        captcha_token: None,
    };
    match state
        .accounts
        .register(input, crate::api::client_ip(req))
        .await
    {
        Ok(r) => {
            let (_, continue_q) = target(&f.continue_to);
            let email = query_encode(&r.user.email);
            let to = if r.activation_required {
                format!("/activate?continue={continue_q}&email={email}&sent=1")
            } else {
                format!("/login?continue={continue_q}&login_hint={email}")
            };
            redirect(StatusCode::SEE_OTHER, &to, Vec::new())
        }
        Err(e) => {
            let (status, text) = describe(&e);
            register_page(req, &settings, status, &f, Some(text))
        }
    }
}

fn activate_page(
    req: &Request,
    settings: &Settings,
    status: StatusCode,
    continue_to: &str,
    email: &str,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let (token, set) = csrf(req, settings);
    let (continue_to, continue_q) = target(continue_to);
    let page = ActivatePage {
        product: settings.mail.product_name.clone(),
        title: "Activate your account".into(),
        csrf: token,
        continue_to,
        continue_q,
        email: email.chars().take(254).collect(),
        error,
        notice,
    };
    html(status, page.html(), set.into_iter().collect())
}

const CODE_SENT: &str =
    "If an account for this email is waiting to be activated, we sent it a 6-digit code.";

/// `GET /activate`.
#[poem::handler]
pub async fn activate_form(req: &Request) -> Response {
    let settings = state(req).live.get();
    let q: PageQuery = req.params().unwrap_or_default();
    let notice = q.sent.map(|_| CODE_SENT.to_owned());
    activate_page(
        req,
        &settings,
        StatusCode::OK,
        &q.continue_to,
        &q.email,
        None,
        notice,
    )
}

/// `POST /activate`: the emailed code, or (`action=resend`) a new code.
#[poem::handler]
pub async fn activate(req: &Request, form: PageForm<AccountForm>) -> Response {
    let state = state(req);
    let settings = state.live.get();
    let f = match posted(req, &settings, form) {
        Ok(f) => f,
        Err(refused) => return refused.page(&settings),
    };
    let ip = crate::api::client_ip(req);
    if f.action == "resend" {
        let (status, error, notice) = match state.accounts.resend_activation(&f.email, ip).await {
            Ok(()) => (StatusCode::OK, None, Some(CODE_SENT.to_owned())),
            Err(e) => {
                let (s, t) = describe(&e);
                (s, Some(t), None)
            }
        };
        return activate_page(
            req,
            &settings,
            status,
            &f.continue_to,
            &f.email,
            error,
            notice,
        );
    }
    match state.accounts.activate(&f.email, &f.code, ip).await {
        Ok(user) => {
            let (_, continue_q) = target(&f.continue_to);
            let to = format!(
                "/login?continue={continue_q}&notice=activated&login_hint={}",
                query_encode(&user.email)
            );
            redirect(StatusCode::SEE_OTHER, &to, Vec::new())
        }
        Err(e) => {
            let (status, text) = describe(&e);
            activate_page(
                req,
                &settings,
                status,
                &f.continue_to,
                &f.email,
                Some(text),
                None,
            )
        }
    }
}

fn forgot_page(
    req: &Request,
    settings: &Settings,
    status: StatusCode,
    f: &AccountForm,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let (token, set) = csrf(req, settings);
    let (continue_to, continue_q) = target(&f.continue_to);
    let page = ForgotPage {
        product: settings.mail.product_name.clone(),
        title: "Reset your password".into(),
        csrf: token,
        continue_to,
        continue_q,
        email: f.email.chars().take(254).collect(),
        error,
        notice,
    };
    html(status, page.html(), set.into_iter().collect())
}

/// `GET /password/forgot`.
#[poem::handler]
pub async fn forgot_form(req: &Request) -> Response {
    let settings = state(req).live.get();
    let q: PageQuery = req.params().unwrap_or_default();
    let f = AccountForm {
        continue_to: q.continue_to,
        email: q.email,
        ..AccountForm::default()
    };
    forgot_page(req, &settings, StatusCode::OK, &f, None, None)
}

/// `POST /password/forgot`: the same answer for known and unknown emails.
#[poem::handler]
pub async fn forgot(req: &Request, form: PageForm<AccountForm>) -> Response {
    let state = state(req);
    let settings = state.live.get();
    let f = match posted(req, &settings, form) {
        Ok(f) => f,
        Err(refused) => return refused.page(&settings),
    };
    match state
        .accounts
        .forgot_password(&f.email, crate::api::client_ip(req))
        .await
    {
        Ok(()) => forgot_page(
            req,
            &settings,
            StatusCode::OK,
            &f,
            None,
            Some(
                "If an account exists for this email, we sent it a link to choose a new password."
                    .into(),
            ),
        ),
        Err(e) => {
            let (status, text) = describe(&e);
            forgot_page(req, &settings, status, &f, Some(text), None)
        }
    }
}

fn reset_page(
    req: &Request,
    settings: &Settings,
    status: StatusCode,
    token: &str,
    error: Option<String>,
) -> Response {
    let (csrf_token, set) = csrf(req, settings);
    let page = ResetPage {
        product: settings.mail.product_name.clone(),
        title: "Choose a new password".into(),
        csrf: csrf_token,
        token: token.chars().take(512).collect(),
        min_password: settings.accounts.password_min_length,
        error,
    };
    html(status, page.html(), set.into_iter().collect())
}

/// `GET /password/reset?token=…`: the page the reset email links to.
#[poem::handler]
pub async fn reset_form(req: &Request) -> Response {
    let settings = state(req).live.get();
    let q: PageQuery = req.params().unwrap_or_default();
    if q.token.is_empty() {
        return message(
            &settings,
            StatusCode::BAD_REQUEST,
            "This link is incomplete",
            "Open the link from the password-reset email again, or ask for a new one.",
            Some(("/password/forgot".into(), "Ask for a new link".into())),
        );
    }
    reset_page(req, &settings, StatusCode::OK, &q.token, None)
}

/// `POST /password/reset`.
#[poem::handler]
pub async fn reset(req: &Request, form: PageForm<AccountForm>) -> Response {
    let state = state(req);
    let settings = state.live.get();
    let f = match posted(req, &settings, form) {
        Ok(f) => f,
        Err(refused) => return refused.page(&settings),
    };
    if f.password != f.password_confirm {
        return reset_page(
            req,
            &settings,
            StatusCode::BAD_REQUEST,
            &f.token,
            Some("The two passwords are not the same.".into()),
        );
    }
    match state
        .accounts
        .reset_password(&f.token, &f.password, crate::api::client_ip(req))
        .await
    {
        Ok(()) => redirect(StatusCode::SEE_OTHER, "/login?notice=reset", Vec::new()),
        Err(e) => {
            let (status, text) = describe(&e);
            reset_page(req, &settings, status, &f.token, Some(text))
        }
    }
}
