//! Password recovery by emailed single-use link.

use std::net::IpAddr;

use sea_orm::TransactionTrait;

use super::fields::Email;
use super::{Accounts, store};
use crate::clock::chrono_duration;
use crate::codes::{self, Kind};
use crate::error::{Error, Result};
use crate::limits::LimitKind;

impl Accounts {
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
        crate::sessions::store::end_login_sessions(&txn, user.id, None, now).await?;
        txn.commit().await?;
        tracing::info!(user.id = %user.id, "password reset; sessions revoked");
        Ok(())
    }
}
