//! Accounts: registration, activation by emailed code, password reset by
//! emailed link, profile, password change. No HTTP types here.

mod authenticate;
pub mod fields;
pub mod store;

pub use authenticate::{BAD_CREDENTIALS, KNOWN_SOURCE_FOR};

use std::net::IpAddr;

use sea_orm::{DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use crate::captcha::Captcha;
use crate::clock::{Clock, chrono_duration};
use crate::codes::{self, Kind};
use crate::config::LiveSettings;
use crate::entity::users;
use crate::error::{Error, Result};
use crate::limits::{LimitKind, Limiter};
use crate::mail::Mailer;
use crate::passwords::{Hasher, Password, Verified};
use crate::secrets::ServerKey;
use fields::{Email, Problems, Username, parse_name, parse_phone};

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

    /// Registers a user and, when activation is required, mails the code.
    pub async fn register(&self, input: Registration, ip: IpAddr) -> Result<Registered> {
        self.limits
            .check(LimitKind::RegisterPerIp, &ip.to_string())
            .await?;
        let settings = self.live.get();
        let mut p = Problems::default();
        let email = match input.email.as_deref() {
            Some(e) => p.take("email", Email::parse(e)),
            None => p.take::<Email>("email", Err("is required".into())),
        };
        let username = input
            .username
            .as_deref()
            .and_then(|u| p.take("username", Username::parse(u)));
        let given_name = input
            .given_name
            .as_deref()
            .and_then(|n| p.take("given_name", parse_name(n)));
        let family_name = input
            .family_name
            .as_deref()
            .and_then(|n| p.take("family_name", parse_name(n)));
        let phone_number = input
            .phone_number
            .as_deref()
            .and_then(|n| p.take("phone_number", parse_phone(n)));
        let password = match input.password.as_deref() {
            None | Some("") => p.take::<Password>("password", Err("is required".into())),
            Some(raw) => {
                let about = [
                    email.as_ref().map(Email::as_str),
                    username.as_ref().map(Username::as_str),
                    given_name.as_deref(),
                    family_name.as_deref(),
                ];
                match self.parse_password(raw, "password", about).await {
                    Ok(pw) => Some(pw),
                    Err(Error::Validation(f)) => {
                        for (k, v) in f {
                            for msg in v {
                                p.add(&k, msg);
                            }
                        }
                        None
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if self.captcha.enabled() && input.captcha_token.as_deref().is_none_or(str::is_empty) {
            p.add("captcha_token", "is required");
        }
        p.finish()?;
        let (Some(email), Some(password)) = (email, password) else {
            return Err(Error::internal("validated fields missing"));
        };
        self.captcha
            .verify(input.captcha_token.as_deref(), ip)
            .await?;

        let hash = self.hasher.hash(password.expose()).await?;
        let now = self.clock.now();
        let require_activation = settings.accounts.require_activation;
        let user = users::Model {
            id: Uuid::new_v4(),
            email: email.as_str().to_owned(),
            email_normalized: email.normalized(),
            username_normalized: username.as_ref().map(|u| fields::canonical(u.as_str())),
            username: username.map(|u| u.as_str().to_owned()),
            password_hash: hash,
            given_name,
            family_name,
            phone_number,
            email_verified: false,
            activated: !require_activation,
            disabled: false,
            roles: String::new(),
            created_at: now,
            updated_at: now,
        };
        let turn = self.writes.enter().await;
        let txn = self.db.begin().await?;
        let user = match store::insert(&txn, user.clone()).await {
            Ok(()) => user,
            // The address's account was never activated: the registration
            // is contested (see `store::contest_unactivated`): a new code to
            // the canonical address, and no password counts until its owner
            // chooses one after activating.
            Err(Error::EmailTaken) if require_activation => {
                txn.rollback().await?;
                let txn = self.db.begin().await?;
                let Some(contested) =
                    store::contest_unactivated(&txn, &user.email_normalized, now).await?
                else {
                    return Err(Error::EmailTaken);
                };
                let ttl = chrono_duration(settings.accounts.activation_ttl);
                let code = codes::issue(
                    &txn,
                    &self.server_key,
                    Kind::Activation,
                    contested.id,
                    now,
                    ttl,
                )
                .await?;
                txn.commit().await?;
                drop(turn);
                self.mailer.send_activation(
                    &contested.email,
                    &code,
                    settings.accounts.activation_ttl,
                );
                tracing::info!(user.id = %contested.id, "registration contested: code re-sent, password to be chosen after activation");
                // The answer shows what this registrant sent, as for a new
                // account: never the pending account's id or profile, which
                // may be someone else's.
                return Ok(Registered {
                    user,
                    activation_required: true,
                });
            }
            Err(e) => return Err(e),
        };
        let code = if require_activation {
            let ttl = chrono_duration(settings.accounts.activation_ttl);
            Some(codes::issue(&txn, &self.server_key, Kind::Activation, user.id, now, ttl).await?)
        } else {
            None
        };
        txn.commit().await?;
        drop(turn);
        if let Some(code) = code {
            self.mailer
                .send_activation(&user.email, &code, settings.accounts.activation_ttl);
        }
        tracing::info!(user.id = %user.id, "user registered");
        metrics::counter!("gatehouse_users_registered_total").increment(1);
        Ok(Registered {
            user,
            activation_required: require_activation,
        })
    }

    /// Activates an account with its emailed code. Wrong tries are limited
    /// per client, deployment-wide and per (account, client); an attempt is
    /// reserved first so that parallel guesses cannot pass the limit.
    pub async fn activate(&self, email: &str, code: &str, ip: IpAddr) -> Result<users::Model> {
        self.limits
            .check(LimitKind::UnauthenticatedPerIp, &ip.to_string())
            .await?;
        let email = Email::parse(email).map_err(|p| Error::field("email", p))?;
        let user = store::find_by_email(&self.db, email.as_str()).await?;
        // Failed tries are counted per client, across the deployment, and
        // per (account, client), in that order; a success gives its try
        // back. Per (account, client), not per account: a stranger's wrong
        // tries must not lock the owner's right code out (the code itself
        // dies after five wrong tries, which bounds guessing it). The
        // deployment-wide ceiling counts only tries at pending accounts, so
        // tries at made-up addresses cannot spend it for everyone.
        let ip_key = ip.to_string();
        let account = format!(
            "{}|{ip_key}",
            user.as_ref()
                .map_or_else(|| email.normalized(), |u| u.id.to_string())
        );
        let global = user.as_ref().is_some_and(|u| !u.activated);
        self.limits
            .check(LimitKind::ActivationPerIp, &ip_key)
            .await?;
        if global && let Err(e) = self.limits.check(LimitKind::ActivationGlobal, "all").await {
            self.limits
                .refund(LimitKind::ActivationPerIp, &ip_key)
                .await;
            return Err(e);
        }
        if let Err(e) = self
            .limits
            .check(LimitKind::ActivationPerAccount, &account)
            .await
        {
            self.limits
                .refund(LimitKind::ActivationPerIp, &ip_key)
                .await;
            if global {
                self.limits.refund(LimitKind::ActivationGlobal, "all").await;
            }
            return Err(e);
        }
        let well_formed = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
        let Some(user) = user.filter(|_| well_formed) else {
            return Err(Error::InvalidCode);
        };
        if user.activated {
            // The code was spent; answering success here would tell anyone
            // which emails have active accounts.
            return Err(Error::InvalidCode);
        }
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        if !codes::spend_activation(&txn, &self.server_key, user.id, code, now).await? {
            // Kept: the wrong try counts against the code.
            txn.commit().await?;
            return Err(Error::InvalidCode);
        }
        store::activate(&txn, user.id, now).await?;
        // A contested registration: its owner, who just proved the mailbox,
        // chooses the password through a link sent there.
        let choose = if user.password_hash == store::NO_PASSWORD {
            let ttl = self.live.get().accounts.reset_ttl;
            Some((
                codes::issue(
                    &txn,
                    &self.server_key,
                    Kind::Reset,
                    user.id,
                    now,
                    chrono_duration(ttl),
                )
                .await?,
                ttl,
            ))
        } else {
            None
        };
        txn.commit().await?;
        if let Some((token, ttl)) = choose {
            let link = self.live.get().reset_link(&token);
            self.mailer.send_choose_password(&user.email, &link, ttl);
        }
        self.limits
            .refund(LimitKind::ActivationPerAccount, &account)
            .await;
        self.limits
            .refund(LimitKind::ActivationPerIp, &ip_key)
            .await;
        if global {
            self.limits.refund(LimitKind::ActivationGlobal, "all").await;
        }
        tracing::info!(user.id = %user.id, "account activated");
        store::find_by_id(&self.db, user.id)
            .await?
            .ok_or_else(|| Error::internal("user vanished"))
    }

    /// Mails a new activation code (replacing the old one) if the email
    /// belongs to an account waiting for activation. Answers the same either way.
    pub async fn resend_activation(&self, email: &str, ip: IpAddr) -> Result<()> {
        self.limits
            .check(LimitKind::UnauthenticatedPerIp, &ip.to_string())
            .await?;
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        // Per (email, client): a stranger spending it cannot keep the
        // owner from asking for a new code.
        self.limits
            .check(
                LimitKind::ResendPerEmail,
                &format!("{}|{ip}", email.normalized()),
            )
            .await?;
        let Some(user) = store::find_by_email(&self.db, email.as_str()).await? else {
            return Ok(());
        };
        if user.activated {
            return Ok(());
        }
        let ttl = self.live.get().accounts.activation_ttl;
        let code = codes::issue(
            &self.db,
            &self.server_key,
            Kind::Activation,
            user.id,
            self.clock.now(),
            chrono_duration(ttl),
        )
        .await?;
        self.mailer.send_activation(&user.email, &code, ttl);
        Ok(())
    }

    /// Mails a single-use reset link if the email has an account. Answers the
    /// same either way.
    pub async fn forgot_password(&self, email: &str, ip: IpAddr) -> Result<()> {
        self.limits
            .check(LimitKind::ForgotPerIp, &ip.to_string())
            .await?;
        let Ok(email) = Email::parse(email) else {
            return Ok(());
        };
        self.limits
            .check(LimitKind::ForgotPerEmail, &email.normalized())
            .await?;
        let Some(user) = store::find_by_email(&self.db, email.as_str()).await? else {
            return Ok(());
        };
        if user.disabled {
            return Ok(());
        }
        let settings = self.live.get();
        let ttl = settings.accounts.reset_ttl;
        let token = codes::issue(
            &self.db,
            &self.server_key,
            Kind::Reset,
            user.id,
            self.clock.now(),
            chrono_duration(ttl),
        )
        .await?;
        self.mailer
            .send_reset(&user.email, &settings.reset_link(&token), ttl);
        Ok(())
    }

    /// Sets a new password with a reset token, spends the token and revokes
    /// every refresh token of the user. The new password is checked before the
    /// token is spent, so a refused password leaves the link usable.
    pub async fn reset_password(&self, token: &str, new_password: &str, ip: IpAddr) -> Result<()> {
        self.limits
            .check(LimitKind::UnauthenticatedPerIp, &ip.to_string())
            .await?;
        if token.is_empty() || token.len() > 256 {
            return Err(Error::InvalidResetToken);
        }
        let now = self.clock.now();
        let user_id = codes::peek_reset(&self.db, &self.server_key, token, now)
            .await?
            .ok_or(Error::InvalidResetToken)?;
        // A disabled account cannot be taken back through its mailbox.
        let user = store::find_by_id(&self.db, user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(Error::InvalidResetToken)?;
        let password = self
            .check_new_password(&user, new_password, "password")
            .await?;
        let hash = self.hasher.hash(password.expose()).await?;
        let txn = self.db.begin().await?;
        if codes::spend_reset(&txn, &self.server_key, token, now).await? != Some(user.id) {
            txn.rollback().await?;
            return Err(Error::InvalidResetToken);
        }
        store::set_password_hash(&txn, user.id, &hash, now).await?;
        crate::sessions::store::revoke_user(&txn, user.id, None, now).await?;
        txn.commit().await?;
        tracing::info!(user.id = %user.id, "password reset; sessions revoked");
        Ok(())
    }

    /// The account `id`, if it exists.
    pub async fn by_id(&self, id: Uuid) -> Result<Option<users::Model>> {
        Ok(store::find_by_id(&self.db, id).await?)
    }

    /// The user behind an access token's `sub`.
    pub async fn me(&self, sub: &str) -> Result<users::Model> {
        let gone = || Error::InvalidBearer("the account no longer exists".into());
        let id = Uuid::parse_str(sub).map_err(|_| gone())?;
        let user = store::find_by_id(&self.db, id).await?.ok_or_else(gone)?;
        if user.disabled {
            return Err(Error::InvalidBearer("the account is disabled".into()));
        }
        Ok(user)
    }

    /// Applies a profile change.
    pub async fn update_profile(&self, sub: &str, change: ProfileChange) -> Result<users::Model> {
        let mut user = self.me(sub).await?;
        let mut p = Problems::default();
        match change.username {
            Patch::Keep => {}
            Patch::Clear => {
                user.username = None;
                user.username_normalized = None;
            }
            Patch::Set(u) => {
                if let Some(u) = p.take("username", Username::parse(&u)) {
                    user.username_normalized = Some(fields::canonical(u.as_str()));
                    user.username = Some(u.as_str().to_owned());
                }
            }
        }
        let mut apply =
            |field: &str,
             patch: Patch,
             target: &mut Option<String>,
             parse: fn(&str) -> std::result::Result<String, String>| match patch {
                Patch::Keep => {}
                Patch::Clear => *target = None,
                Patch::Set(v) => {
                    if let Some(v) = p.take(field, parse(&v)) {
                        *target = Some(v);
                    }
                }
            };
        apply(
            "given_name",
            change.given_name,
            &mut user.given_name,
            parse_name,
        );
        apply(
            "family_name",
            change.family_name,
            &mut user.family_name,
            parse_name,
        );
        apply(
            "phone_number",
            change.phone_number,
            &mut user.phone_number,
            parse_phone,
        );
        p.finish()?;
        user.updated_at = self.clock.now();
        store::update(&self.db, user).await
    }

    /// Changes the password after checking the current one; revokes every
    /// other session's refresh tokens (keeps `keep_session`'s family).
    pub async fn change_password(
        &self,
        sub: &str,
        current: &str,
        new: &str,
        keep_session: Option<Uuid>,
        ip: IpAddr,
    ) -> Result<()> {
        let user = self.me(sub).await?;
        if new.is_empty() {
            return Err(Error::field("new_password", "is required"));
        }
        // Wrong current passwords count like failed logins, per source and
        // against the account's ceiling: a stolen access token is no free
        // password oracle.
        let per_ip = format!("{}|{ip}", user.id);
        let account = user.id.to_string();
        let reserved_ip = self
            .limits
            .reserve(LimitKind::LoginFailuresPerAccountIp, &per_ip)
            .await;
        let reserved_account = reserved_ip
            && self
                .limits
                .reserve(LimitKind::LoginFailuresPerAccount, &account)
                .await;
        if !reserved_account {
            if reserved_ip {
                self.limits
                    .refund(LimitKind::LoginFailuresPerAccountIp, &per_ip)
                    .await;
            }
            return Err(Error::RateLimited {
                retry_after: std::time::Duration::from_secs(60),
            });
        }
        if current.chars().count() > crate::passwords::MAX_LEN
            || self
                .hasher
                .verify(Some(&user.password_hash), current)
                .await?
                == Verified::No
        {
            return Err(Error::field("current_password", "is incorrect"));
        }
        self.limits
            .refund(LimitKind::LoginFailuresPerAccountIp, &per_ip)
            .await;
        self.limits
            .refund(LimitKind::LoginFailuresPerAccount, &account)
            .await;
        let password = self.check_new_password(&user, new, "new_password").await?;
        let hash = self.hasher.hash(password.expose()).await?;
        let now = self.clock.now();
        let txn = self.db.begin().await?;
        store::set_password_hash(&txn, user.id, &hash, now).await?;
        crate::sessions::store::revoke_user(&txn, user.id, keep_session, now).await?;
        // Reset links mailed before the change die with the old password.
        codes::discard(&txn, user.id, Kind::Reset).await?;
        txn.commit().await?;
        tracing::info!(user.id = %user.id, "password changed; other sessions revoked");
        Ok(())
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

    /// Creates an activated user from the command line, optionally an admin.
    pub async fn create_user(
        &self,
        email: &str,
        password: &str,
        admin: bool,
    ) -> Result<users::Model> {
        let email = Email::parse(email).map_err(|p| Error::field("email", p))?;
        let password = self
            .parse_password(
                password,
                "password",
                [Some(email.as_str()), None, None, None],
            )
            .await?;
        let now = self.clock.now();
        let user = users::Model {
            id: Uuid::new_v4(),
            email: email.as_str().to_owned(),
            email_normalized: email.normalized(),
            username: None,
            username_normalized: None,
            password_hash: self.hasher.hash(password.expose()).await?,
            given_name: None,
            family_name: None,
            phone_number: None,
            email_verified: true,
            activated: true,
            disabled: false,
            roles: if admin { "admin".into() } else { String::new() },
            created_at: now,
            updated_at: now,
        };
        store::insert(&self.db, user.clone()).await?;
        Ok(user)
    }

    /// Activates an account without a code (operators, from the command line).
    pub async fn activate_by_operator(&self, email: &str) -> Result<users::Model> {
        let user = store::find_by_email(&self.db, email)
            .await?
            .ok_or_else(|| Error::field("email", "has no account"))?;
        store::activate(&self.db, user.id, self.clock.now()).await?;
        store::find_by_id(&self.db, user.id)
            .await?
            .ok_or_else(|| Error::internal("user vanished"))
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
