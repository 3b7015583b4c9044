//! The bearer check of the protected endpoints: the token's signature and
//! time, then the deny list and the caller's account in one query (one
//! round trip instead of two on every `/account/me` and userinfo).

use sea_orm::{ConnectionTrait as _, DbBackend, FromQueryResult, Statement};
use uuid::Uuid;

use super::OAuth;
use crate::entity::users;
use crate::error::{Error, Result};
use crate::tokens::claims::AccessClaims;

/// A verified caller: the access token's claims and the account behind it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The access token's claims.
    pub claims: AccessClaims,
    /// The account of `claims.sub`, active.
    pub user: users::Model,
}

impl OAuth {
    /// Checks a bearer access token as [`crate::tokens::Tokens::verify_access`]
    /// does and reads its account in the same query: a revoked token, a
    /// deleted or a disabled account is `invalid_token`.
    pub async fn caller(&self, token: &str) -> Result<Caller> {
        let claims = self.tokens.verify_except_revocation(token)?;
        let gone = || Error::InvalidBearer("the account no longer exists".into());
        let (Ok(jti), Ok(sub)) = (Uuid::parse_str(&claims.jti), Uuid::parse_str(&claims.sub))
        else {
            return Err(gone());
        };
        let Some((user, denied)) = self.caller_row(jti, sub).await? else {
            // No account: but a revoked token still says so first.
            if self.tokens.verify_access(token).await.is_err() {
                return Err(Error::InvalidBearer("the access token was revoked".into()));
            }
            return Err(gone());
        };
        if denied {
            return Err(Error::InvalidBearer("the access token was revoked".into()));
        }
        if user.disabled {
            return Err(Error::InvalidBearer("the account is disabled".into()));
        }
        Ok(Caller { claims, user })
    }

    /// The account `sub` and whether `jti` is on the deny list, in one
    /// query: on SQLite on this thread ([`crate::db::Inline`]).
    async fn caller_row(&self, jti: Uuid, sub: Uuid) -> Result<Option<(users::Model, bool)>> {
        if self.inline.is_on() {
            static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                format!(
                    "SELECT {}, EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = ?1) \
                     FROM users WHERE id = ?2",
                    users::SQLITE_COLUMNS.join(", ")
                )
            });
            use rusqlite::OptionalExtension as _;
            let row = self
                .inline
                .read(move |conn| {
                    conn.prepare_cached(&SQL)?
                        .query_row([jti.as_bytes(), sub.as_bytes()], |row| {
                            let user = users::Model::from_sqlite_row(row, 0)?;
                            let denied: bool = row.get(users::SQLITE_COLUMNS.len())?;
                            Ok((user, denied))
                        })
                        .optional()
                })
                .await?;
            return Ok(row);
        }
        let row = self
            .db
            .query_one(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT users.*, EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1) \
                 AS gh_denied FROM users WHERE id = $2",
                [jti.into(), sub.into()],
            ))
            .await?;
        let Some(row) = row else { return Ok(None) };
        let denied: bool = row.try_get("", "gh_denied").map_err(Error::from)?;
        let user = users::Model::from_query_result(&row, "").map_err(Error::from)?;
        Ok(Some((user, denied)))
    }
}
