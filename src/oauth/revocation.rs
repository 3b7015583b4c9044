//! RFC 7009 revocation and RFC 7662 introspection of the tokens a client
//! was granted.

use std::net::IpAddr;

use uuid::Uuid;

use super::OAuth;
use crate::clients::Client;
use crate::error::Result;
use crate::limits::LimitKind;

/// RFC 7662 §2.2 answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Introspection {
    /// Whether the token is live.
    pub active: bool,
    /// Subject.
    pub sub: Option<String>,
    /// Client.
    pub client_id: Option<String>,
    /// Scope.
    pub scope: Option<String>,
    /// Expiry.
    pub exp: Option<i64>,
    /// Issue time.
    pub iat: Option<i64>,
    /// Token id.
    pub jti: Option<String>,
    /// `access_token` or `refresh_token`.
    pub token_type: Option<String>,
    /// Username or email.
    pub username: Option<String>,
    /// Issuer.
    pub iss: Option<String>,
    /// Audience.
    pub aud: Option<String>,
}

impl OAuth {
    /// RFC 7009: revokes a refresh token (its whole family) or an access
    /// token (its `jti`, until it expires). Unknown tokens are not an error.
    pub async fn revoke(
        &self,
        client: &Client,
        token: &str,
        hint: Option<&str>,
        ip: IpAddr,
    ) -> Result<()> {
        self.limits
            .check(LimitKind::UnauthenticatedPerIp, &ip.to_string())
            .await?;
        let access_first = hint == Some("access_token") || token.matches('.').count() == 2;
        if !access_first && self.sessions.revoke(&client.id, token).await? {
            return Ok(());
        }
        if self.tokens.revoke(&client.id, token).await? {
            return Ok(());
        }
        if access_first {
            self.sessions.revoke(&client.id, token).await?;
        }
        Ok(())
    }

    /// RFC 7662: what a resource server may know about `token`.
    pub async fn introspect(&self, token: &str, ip: IpAddr) -> Result<Introspection> {
        self.limits
            .check(LimitKind::UnauthenticatedPerIp, &ip.to_string())
            .await?;
        if let Ok(claims) = self.tokens.verify_access(token).await {
            let user = match Uuid::parse_str(&claims.sub) {
                Ok(id) => self.accounts.by_id(id).await?,
                Err(_) => None,
            };
            let Some(user) = user.filter(|u| u.activated && !u.disabled) else {
                return Ok(Introspection::default());
            };
            return Ok(Introspection {
                active: true,
                sub: Some(claims.sub),
                client_id: Some(claims.client_id),
                scope: Some(claims.scope),
                exp: Some(claims.exp),
                iat: Some(claims.iat),
                jti: Some(claims.jti),
                // RFC 7662 §2.2: the token type of RFC 6749 §5.1.
                token_type: Some("Bearer".into()),
                username: Some(user.username.unwrap_or(user.email)),
                iss: Some(claims.iss),
                aud: Some(claims.aud),
            });
        }
        if let Some(row) = self.sessions.live(token).await?
            && let Some(user) = self.accounts.by_id(row.user_id).await?
            && user.activated
            && !user.disabled
        {
            return Ok(Introspection {
                active: true,
                sub: Some(row.user_id.to_string()),
                client_id: Some(row.client_id),
                scope: Some(row.scope),
                exp: Some(row.expires_at.timestamp()),
                iat: Some(row.created_at.timestamp()),
                jti: Some(row.id.to_string()),
                token_type: Some("refresh_token".into()),
                username: Some(user.username.unwrap_or(user.email)),
                iss: Some(self.tokens.issuer().to_owned()),
                aud: None,
            });
        }
        Ok(Introspection::default())
    }
}
