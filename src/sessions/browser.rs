//! Browser login sessions: what the login cookie stands for. The cookie
//! holds the session id and a 256-bit secret; only the secret's hash is
//! stored, so a database read does not yield a usable cookie.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::Sessions;
use crate::clock::chrono_duration;
use crate::entity::login_sessions::{self, Column, Entity};
use crate::error::Result;
use crate::secrets::sha256_hex;

impl Sessions {
    /// Starts a login session for `user`, who has just given the right
    /// password; returns the cookie value.
    pub async fn log_in(&self, user: Uuid) -> Result<(String, login_sessions::Model)> {
        let now = self.clock.now();
        let ttl = self.live.get().accounts.login_session_ttl;
        let id = Uuid::new_v4();
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        let mut raw = id.as_bytes().to_vec();
        raw.extend_from_slice(&secret);
        let row = login_sessions::Model {
            id,
            user_id: user,
            secret_hash: sha256_hex(&secret),
            auth_time: now,
            expires_at: now + chrono_duration(ttl),
            ended_at: None,
        };
        {
            let _turn = self.writes.enter().await;
            Entity::insert(row.clone().into_active_model())
                .exec_without_returning(&self.db)
                .await?;
        }
        Ok((URL_SAFE_NO_PAD.encode(raw), row))
    }

    /// The live session a cookie value stands for.
    pub async fn login_session(&self, cookie: &str) -> Result<Option<login_sessions::Model>> {
        if cookie.len() != 64 {
            return Ok(None);
        }
        let Ok(raw) = URL_SAFE_NO_PAD.decode(cookie) else {
            return Ok(None);
        };
        let Some(id) = raw.get(..16).and_then(|b| Uuid::from_slice(b).ok()) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let Some(row) = Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(None);
        };
        let secret_ok: bool = sha256_hex(&raw[16..])
            .as_bytes()
            .ct_eq(row.secret_hash.as_bytes())
            .into();
        Ok((secret_ok && row.ended_at.is_none() && row.expires_at > now).then_some(row))
    }

    /// Ends the login session `id` and revokes the refresh families started
    /// from it.
    pub async fn log_out(&self, id: Uuid) -> Result<u64> {
        let now = self.clock.now();
        {
            let _turn = self.writes.enter().await;
            Entity::update_many()
                .col_expr(Column::EndedAt, Expr::value(now))
                .filter(Column::Id.eq(id))
                .filter(Column::EndedAt.is_null())
                .exec(&self.db)
                .await?;
        }
        self.revoke_login_session(id).await
    }

    /// Deletes login sessions that lapsed before now.
    pub(super) async fn sweep_login_sessions(&self) -> Result<u64> {
        Ok(Entity::delete_many()
            .filter(Column::ExpiresAt.lt(self.clock.now()))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
