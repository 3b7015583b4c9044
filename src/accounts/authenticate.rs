//! The one password check at login, shared by the password grant and the
//! hosted login page.

use std::net::IpAddr;

use super::{Accounts, fields, store};
use crate::clock::chrono_duration;
use crate::entity::users;
use crate::error::{Error, Result};
use crate::limits::LimitKind;
use crate::passwords::Verified;

/// How long a source the owner logged in from stays "known": it keeps its
/// own failure budget when strangers have spent the account's ceiling.
pub const KNOWN_SOURCE_FOR: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// What a failed login says, whichever part was wrong.
pub const BAD_CREDENTIALS: &str = "the username or password is incorrect";

impl Accounts {
    /// Checks `password` for the account `login` (its email or username)
    /// from `ip`, and returns the account if it may log in.
    ///
    /// Failed attempts are throttled per (account, client IP) and per account;
    /// an attempt is reserved before the password is checked so parallel
    /// guesses cannot slip past the limit, and given back when it succeeds.
    /// A throttled attempt answers exactly as a wrong password does, and an
    /// unknown account as a wrong password for a real one. A hash made with
    /// older parameters is upgraded.
    pub async fn authenticate(
        &self,
        login: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<users::Model> {
        if login.is_empty() || password.is_empty() {
            return Err(Error::InvalidRequest(
                "username and password are required".into(),
            ));
        }
        if login.chars().count() > 254 || password.chars().count() > crate::passwords::MAX_LEN {
            return Err(Error::InvalidGrant(BAD_CREDENTIALS.into()));
        }
        self.limits
            .check(LimitKind::LoginPerIp, &ip.to_string())
            .await?;

        let user = store::find_by_login(&self.db, login).await?;
        // Unknown accounts are throttled under their login name, like real ones.
        let account = user
            .as_ref()
            .map_or_else(|| fields::canonical(login), |u| u.id.to_string());
        let source = ip.to_string();
        let per_ip = format!("{account}|{source}");
        let now = self.clock.now();
        // The (account, source) budget first: every source, the owner's too,
        // has its own. Then the account's ceiling across all sources, which
        // stops distributed guessing, except for a source the account has
        // logged in from before: strangers spending the ceiling elsewhere
        // cannot lock the owner out of where they usually log in.
        let reserved_ip = self
            .limits
            .reserve(LimitKind::LoginFailuresPerAccountIp, &per_ip)
            .await;
        let reserved_all = reserved_ip
            && self
                .limits
                .reserve(LimitKind::LoginFailuresPerAccount, &account)
                .await;
        let owners_source = reserved_ip && !reserved_all && {
            match &user {
                Some(u) => {
                    store::is_known_source(
                        &self.db,
                        u.id,
                        &source,
                        now - chrono_duration(KNOWN_SOURCE_FOR),
                    )
                    .await?
                }
                None => false,
            }
        };
        if !(reserved_all || owners_source) {
            if reserved_ip {
                self.limits
                    .refund(LimitKind::LoginFailuresPerAccountIp, &per_ip)
                    .await;
            }
            // As long as a real check, so the answer does not tell.
            let _ = self.hasher.verify(None, password).await;
            metrics::counter!("gatehouse_login_failures_total", "reason" => "throttled")
                .increment(1);
            tracing::info!(client.ip = %ip, "login throttled");
            return Err(Error::InvalidGrant(BAD_CREDENTIALS.into()));
        }

        let verified = self
            .hasher
            .verify(user.as_ref().map(|u| u.password_hash.as_str()), password)
            .await?;
        let Some(user) = user.filter(|_| verified != Verified::No) else {
            metrics::counter!("gatehouse_login_failures_total", "reason" => "bad_credentials")
                .increment(1);
            return Err(Error::InvalidGrant(BAD_CREDENTIALS.into()));
        };
        self.limits
            .refund(LimitKind::LoginFailuresPerAccountIp, &per_ip)
            .await;
        if reserved_all {
            self.limits
                .refund(LimitKind::LoginFailuresPerAccount, &account)
                .await;
        }
        if let Err(e) = store::remember_source(&self.db, user.id, &source, now).await {
            tracing::warn!(user.id = %user.id, error = %e, "could not record the login's source");
        }
        if !user.activated {
            return Err(Error::InvalidGrant(
                "the account is not activated yet: enter the emailed code".into(),
            ));
        }
        if user.disabled {
            return Err(Error::InvalidGrant("the account is disabled".into()));
        }
        if verified == Verified::YesRehash {
            self.upgrade_hash(&user, password).await;
        }
        Ok(user)
    }

    /// Upgrades `user`'s hash to the current parameters; a failure only
    /// postpones the upgrade to the next login.
    async fn upgrade_hash(&self, user: &users::Model, password: &str) {
        match self.hasher.hash(password).await {
            Ok(h) => {
                if let Err(e) =
                    store::upgrade_password_hash(&self.db, user.id, &user.password_hash, &h).await
                {
                    tracing::warn!(user.id = %user.id, error = %e, "could not upgrade a password hash");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not rehash a password"),
        }
    }
}
