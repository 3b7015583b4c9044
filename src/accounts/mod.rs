//! Accounts: registration, activation by emailed code, password reset by
//! emailed link, profile, password change. No HTTP types here.

mod authenticate;
pub mod fields;
mod profile;
mod recovery;
mod registration;
pub mod store;

pub use authenticate::{BAD_CREDENTIALS, KNOWN_SOURCE_FOR};

use sea_orm::DatabaseConnection;

use crate::captcha::Captcha;
use crate::clock::Clock;
use crate::config::LiveSettings;
use crate::entity::users;
use crate::error::{Error, Result};
use crate::limits::Limiter;
use crate::mail::Mailer;
use crate::passwords::{Hasher, Password};
use crate::secrets::ServerKey;

/// What a registration asks for, as received.
#[derive(Debug, Default)]
pub struct Registration {
    /// Email.
    pub email: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Optional username.
    pub username: Option<String>,
    /// Optional given name.
    pub given_name: Option<String>,
    /// Optional family name.
    pub family_name: Option<String>,
    /// Optional phone number.
    pub phone_number: Option<String>,
    /// Captcha response, when captcha is on.
    pub captcha_token: Option<String>,
}

/// A change to one optional profile field.
#[derive(Debug, Default, Clone)]
pub enum Patch {
    /// Leave as is.
    #[default]
    Keep,
    /// Remove the value.
    Clear,
    /// Set a new value.
    Set(String),
}

/// A profile update (`PATCH /account/me`).
#[derive(Debug, Default)]
pub struct ProfileChange {
    /// Username.
    pub username: Patch,
    /// Given name.
    pub given_name: Patch,
    /// Family name.
    pub family_name: Patch,
    /// Phone number.
    pub phone_number: Patch,
}

/// Result of a registration.
#[derive(Debug)]
pub struct Registered {
    /// The new user.
    pub user: users::Model,
    /// Whether the user must activate before logging in.
    pub activation_required: bool,
}

/// The account service.
#[derive(Clone)]
pub struct Accounts {
    db: DatabaseConnection,
    live: LiveSettings,
    clock: Clock,
    hasher: Hasher,
    server_key: ServerKey,
    limits: Limiter,
    mailer: Mailer,
    captcha: Captcha,
    writes: crate::db::WriteGate,
}

impl Accounts {
    /// Builds the service.
    #[expect(
        clippy::too_many_arguments,
        reason = "the service is wired from its parts once, in app.rs"
    )]
    pub fn new(
        db: DatabaseConnection,
        live: LiveSettings,
        clock: Clock,
        hasher: Hasher,
        server_key: ServerKey,
        limits: Limiter,
        mailer: Mailer,
        captcha: Captcha,
    ) -> Self {
        Self {
            writes: crate::db::WriteGate::for_db(&db),
            db,
            live,
            clock,
            hasher,
            server_key,
            limits,
            mailer,
            captcha,
        }
    }

    async fn check_new_password(
        &self,
        user: &users::Model,
        raw: &str,
        field: &str,
    ) -> Result<Password> {
        let about = [
            Some(user.email.as_str()),
            user.username.as_deref(),
            user.given_name.as_deref(),
            user.family_name.as_deref(),
        ];
        self.parse_password(raw, field, about).await
    }

    /// The password policy with `accounts.password_min_length`, refusing
    /// passwords like the user's own `[email, username, given, family]`.
    /// The strength estimate (milliseconds of CPU for a long input) runs off
    /// the async executor, on input already bounded (`MAX_LEN` characters,
    /// checked first by `Password::parse`, and bounded profile fields).
    async fn parse_password(
        &self,
        raw: &str,
        field: &str,
        about: [Option<&str>; 4],
    ) -> Result<Password> {
        let inputs = user_inputs(about);
        let min_len = self.live.get().accounts.password_min_length;
        let (raw, field) = (raw.to_owned(), field.to_owned());
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            Password::parse(&raw, min_len, &refs, &field)
        })
        .await
        .map_err(Error::internal)?
    }
}

/// What the password must not resemble: the email, its local part, the
/// username and the names.
fn user_inputs([email, username, given, family]: [Option<&str>; 4]) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(e) = email {
        v.push(e.to_owned());
        if let Some((local, _)) = e.split_once('@') {
            v.push(local.to_owned());
            v.extend(
                local
                    .split(['.', '_', '-', '+'])
                    .filter(|s| s.len() > 2)
                    .map(str::to_owned),
            );
        }
    }
    v.extend(
        [username, given, family]
            .into_iter()
            .flatten()
            .map(str::to_owned),
    );
    v
}
