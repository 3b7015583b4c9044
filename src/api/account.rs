//! `/account/*`: registration, activation, password reset, profile.

use poem::Request;
use poem::web::Data;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use super::auth::AccessToken;
use super::error::ApiError;
use super::json::Json;
use super::payload::StrictJson;
use super::types::{TokenResponse, User};
use crate::accounts::{Patch, ProfileChange, Registration};
use crate::app::AppState;
use crate::clients;

/// `/account/*` endpoints.
pub struct AccountApi;

/// Sign-up form.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Email address (unique, case-insensitive).
    #[serde(default)]
    pub email: String,
    /// Password: 8 to 128 characters, not common, not like your email or name.
    #[serde(default)]
    pub password: String,
    /// Optional login name: 3–32 letters, digits, `.`, `_`, `-`.
    pub username: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Phone number in international format (`+14155550123`).
    pub phone_number: Option<String>,
    /// Captcha response, required when the server has captcha on.
    pub captcha_token: Option<String>,
    /// Client to issue tokens to when activation is not required, by the
    /// password grant's rules; without one (and no default client) the
    /// answer carries no tokens. Not needed to create the account.
    pub client_id: Option<String>,
}

/// Registration result.
#[derive(Debug, Object)]
pub struct RegisterResponse {
    /// The new account.
    pub user: User,
    /// Whether the emailed code must be entered before logging in.
    pub activation_required: bool,
    /// Tokens, when no activation is required.
    #[oai(skip_serializing_if_is_none)]
    pub tokens: Option<TokenResponse>,
}

/// Registration outcome.
#[derive(ApiResponse)]
pub enum Registered {
    /// Account created (`Cache-Control: no-store` when it carries tokens).
    #[oai(status = 201)]
    Created(
        Json<RegisterResponse>,
        #[oai(header = "Cache-Control")] Option<String>,
    ),
}

/// Activation form.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    /// The email registered.
    pub email: String,
    /// The 6-digit code from the email.
    pub code: String,
}

/// An account, wrapped.
#[derive(Debug, Object)]
pub struct UserEnvelope {
    /// The account.
    pub user: User,
}

/// An email address.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    /// Email address.
    pub email: String,
}

/// Accepted for processing.
#[derive(ApiResponse)]
pub enum Accepted {
    /// Accepted; the same answer whether or not the email has an account.
    #[oai(status = 202)]
    Accepted,
}

/// Done, nothing to return.
#[derive(ApiResponse)]
pub enum NoContent {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

/// Reset form.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The token from the emailed link.
    pub token: String,
    /// The new password.
    pub password: String,
}

/// Profile change: send only the fields to change; `null` clears one.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// Login name.
    #[serde(default)]
    pub username: MaybeUndefined<String>,
    /// Given name.
    #[serde(default)]
    pub given_name: MaybeUndefined<String>,
    /// Family name.
    #[serde(default)]
    pub family_name: MaybeUndefined<String>,
    /// Phone number (`+14155550123`).
    #[serde(default)]
    pub phone_number: MaybeUndefined<String>,
}

/// Password change form.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password now.
    pub current_password: String,
    /// The new password.
    pub new_password: String,
}

fn patch(v: MaybeUndefined<String>) -> Patch {
    match v {
        MaybeUndefined::Undefined => Patch::Keep,
        MaybeUndefined::Null => Patch::Clear,
        MaybeUndefined::Value(s) => Patch::Set(s),
    }
}

#[OpenApi(tag = "ApiTags::Account")]
impl AccountApi {
    /// Register
    ///
    /// Creates an account and emails a 6-digit activation code. With
    /// `accounts.require_activation = false` the account is active at once
    /// and the answer carries tokens.
    #[oai(
        path = "/account/register",
        method = "post",
        operation_id = "create_account"
    )]
    async fn register(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: StrictJson<RegisterRequest>,
    ) -> Result<Registered, ApiError> {
        let b = body.0;
        let settings = state.live.get();
        // Creating an account is not a client action: a client is needed
        // only for the tokens of an account that needs no activation, and
        // then by the password grant's rules, checked before anything is
        // written.
        let client = if settings.accounts.require_activation {
            None
        } else {
            clients::for_registration(&settings, b.client_id.as_deref())?
        };
        let input = Registration {
            email: Some(b.email).filter(|s| !s.is_empty()),
            password: Some(b.password).filter(|s| !s.is_empty()),
            username: b.username,
            given_name: b.given_name,
            family_name: b.family_name,
            phone_number: b.phone_number,
            captcha_token: b.captcha_token,
        };
        let registered = state
            .accounts
            .register(input, super::client_ip(req))
            .await?;
        let tokens = match client {
            Some(client) if !registered.activation_required => {
                let scope = crate::scope::Scope::parse(&settings.tokens.default_scope)
                    .map_err(crate::error::Error::from)?;
                Some(
                    state
                        .oauth
                        .start_session(&registered.user, &client, &scope, Default::default())
                        .await?
                        .into(),
                )
            }
            _ => None,
        };
        let cache = tokens.as_ref().map(|_| "no-store".to_owned());
        Ok(Registered::Created(
            Json(RegisterResponse {
                user: registered.user.into(),
                activation_required: registered.activation_required,
                tokens,
            }),
            cache,
        ))
    }

    /// Activate
    ///
    /// Activates the account with the emailed code and marks the email
    /// verified. Wrong tries are limited per account.
    #[oai(
        path = "/account/activate",
        method = "post",
        operation_id = "activate_account"
    )]
    async fn activate(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: StrictJson<ActivateRequest>,
    ) -> Result<Json<UserEnvelope>, ApiError> {
        let user = state
            .accounts
            .activate(&body.email, &body.code, super::client_ip(req))
            .await?;
        Ok(Json(UserEnvelope { user: user.into() }))
    }

    /// Resend the activation code
    ///
    /// Replaces the code with a new one if the email waits for activation.
    /// Always 202.
    #[oai(
        path = "/account/activate/resend",
        method = "post",
        operation_id = "resend_activation"
    )]
    async fn resend(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: StrictJson<EmailRequest>,
    ) -> Result<Accepted, ApiError> {
        state
            .accounts
            .resend_activation(&body.email, super::client_ip(req))
            .await?;
        Ok(Accepted::Accepted)
    }

    /// Forgot password
    ///
    /// Emails a single-use reset link if the email has an account. Always 202.
    #[oai(
        path = "/account/password/forgot",
        method = "post",
        operation_id = "request_password_reset"
    )]
    async fn forgot(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: StrictJson<EmailRequest>,
    ) -> Result<Accepted, ApiError> {
        state
            .accounts
            .forgot_password(&body.email, super::client_ip(req))
            .await?;
        Ok(Accepted::Accepted)
    }

    /// Reset password
    ///
    /// Sets a new password with the emailed token, spends the token and
    /// signs the user out everywhere.
    #[oai(
        path = "/account/password/reset",
        method = "post",
        operation_id = "reset_password"
    )]
    async fn reset(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: StrictJson<ResetRequest>,
    ) -> Result<NoContent, ApiError> {
        state
            .accounts
            .reset_password(&body.token, &body.password, super::client_ip(req))
            .await?;
        Ok(NoContent::NoContent)
    }

    /// My account
    #[oai(path = "/account/me", method = "get", operation_id = "get_account")]
    async fn me(&self, auth: AccessToken) -> Result<Json<User>, ApiError> {
        Ok(Json(auth.caller().user.into()))
    }

    /// Update my profile
    #[oai(
        path = "/account/me",
        method = "patch",
        operation_id = "update_account"
    )]
    async fn update_me(
        &self,
        state: Data<&AppState>,
        auth: AccessToken,
        body: StrictJson<ProfileUpdate>,
    ) -> Result<Json<User>, ApiError> {
        let claims = auth.caller().claims;
        let b = body.0;
        let change = ProfileChange {
            username: patch(b.username),
            given_name: patch(b.given_name),
            family_name: patch(b.family_name),
            phone_number: patch(b.phone_number),
        };
        Ok(Json(
            state
                .accounts
                .update_profile(&claims.sub, change)
                .await?
                .into(),
        ))
    }

    /// Change my password
    ///
    /// Checks the current password; other sessions' refresh tokens are revoked.
    #[oai(
        path = "/account/password",
        method = "post",
        operation_id = "change_password"
    )]
    async fn change_password(
        &self,
        state: Data<&AppState>,
        req: &Request,
        auth: AccessToken,
        body: StrictJson<PasswordChange>,
    ) -> Result<NoContent, ApiError> {
        let claims = auth.caller().claims;
        let keep = claims
            .sid
            .as_deref()
            .and_then(|s| uuid::Uuid::parse_str(s).ok());
        state
            .accounts
            .change_password(
                &claims.sub,
                &body.current_password,
                &body.new_password,
                keep,
                super::client_ip(req),
            )
            .await?;
        Ok(NoContent::NoContent)
    }
}
