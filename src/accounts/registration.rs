//! Registration and activation: an account is created unproven and
//! becomes active with the emailed 6-digit code (or by an operator).

use std::net::IpAddr;

use sea_orm::TransactionTrait;
use uuid::Uuid;

use super::fields::{self, Email, Problems, Username, parse_name, parse_phone};
use super::{Accounts, Registered, Registration, store};
use crate::clock::chrono_duration;
use crate::codes::{self, Kind};
use crate::entity::users;
use crate::error::{Error, Result};
use crate::limits::LimitKind;
use crate::passwords::Password;

impl Accounts {
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
