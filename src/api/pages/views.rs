//! The page templates (askama: checked at compile time, HTML-escaped).

use askama::Template;

/// Rendering with a fallback: a template that cannot render (it cannot,
/// once compiled, short of a formatting error) answers a plain sentence.
pub trait Render {
    /// The page's HTML.
    fn html(&self) -> String;
}

impl<T: Template> Render for T {
    fn html(&self) -> String {
        self.render().unwrap_or_else(|e| {
            tracing::error!(error = %e, "a page did not render");
            "<!DOCTYPE html><title>Error</title><p>Something went wrong.</p>".into()
        })
    }
}

/// The login form.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub product: String,
    pub title: String,
    pub csrf: String,
    pub continue_to: String,
    pub continue_q: String,
    pub login_hint: String,
    pub error: Option<String>,
    pub notice: Option<String>,
}

/// The registration form.
#[derive(Template)]
#[template(path = "register.html")]
pub struct RegisterPage {
    pub product: String,
    pub title: String,
    pub csrf: String,
    pub continue_to: String,
    pub continue_q: String,
    pub email: String,
    pub username: String,
    pub given_name: String,
    pub family_name: String,
    pub min_password: usize,
    pub error: Option<String>,
}

/// The activation form (emailed code) and the resend form.
#[derive(Template)]
#[template(path = "activate.html")]
pub struct ActivatePage {
    pub product: String,
    pub title: String,
    pub csrf: String,
    pub continue_to: String,
    pub continue_q: String,
    pub email: String,
    pub error: Option<String>,
    pub notice: Option<String>,
}

/// "Forgot password": asks for the email.
#[derive(Template)]
#[template(path = "forgot.html")]
pub struct ForgotPage {
    pub product: String,
    pub title: String,
    pub csrf: String,
    pub continue_to: String,
    pub continue_q: String,
    pub email: String,
    pub error: Option<String>,
    pub notice: Option<String>,
}

/// The new-password form the reset email links to.
#[derive(Template)]
#[template(path = "reset.html")]
pub struct ResetPage {
    pub product: String,
    pub title: String,
    pub csrf: String,
    pub token: String,
    pub min_password: usize,
    pub error: Option<String>,
}

/// A heading, a sentence, maybe a link.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub product: String,
    pub title: String,
    pub heading: String,
    pub message: String,
    pub link: Option<(String, String)>,
}

/// "Sign out?" for RP-initiated logout without a trusted hint.
#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage {
    pub product: String,
    pub title: String,
    pub csrf: String,
    pub id_token_hint: String,
    pub client_id: String,
    pub post_logout_redirect_uri: String,
    pub state: String,
}
