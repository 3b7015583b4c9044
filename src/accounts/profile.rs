//! The signed-in user's own account: profile and password.

use std::net::IpAddr;

use sea_orm::TransactionTrait;
use uuid::Uuid;

use super::fields::{self, Problems, Username, parse_name, parse_phone};
use super::{Accounts, Patch, ProfileChange, store};
use crate::codes::{self, Kind};
use crate::entity::users;
use crate::error::{Error, Result};
use crate::limits::LimitKind;
use crate::passwords::Verified;

impl Accounts {
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
        crate::sessions::store::end_login_sessions(&txn, user.id, keep_session, now).await?;
        // Reset links mailed before the change die with the old password.
        codes::discard(&txn, user.id, Kind::Reset).await?;
        txn.commit().await?;
        tracing::info!(user.id = %user.id, "password changed; other sessions revoked");
        Ok(())
    }
}
