//! Captcha on registration: the siteverify form API shared by reCAPTCHA v2,
//! hCaptcha and Turnstile (POST `secret`, `response`, `remoteip`; JSON
//! `{"success": bool}`). A provider that does not answer is a 503, never a
//! silent pass.

use std::net::IpAddr;

use serde::Deserialize;

use crate::config::CaptchaSettings;
use crate::error::{Error, Result};

#[derive(Deserialize)]
struct SiteVerify {
    success: bool,
}

/// Verifies captcha tokens when `captcha.secret` is set.
#[derive(Clone)]
pub struct Captcha {
    http: reqwest::Client,
    settings: CaptchaSettings,
}

impl Captcha {
    /// Builds the verifier.
    pub fn new(settings: CaptchaSettings) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(Error::internal)?;
        Ok(Self { http, settings })
    }

    /// Whether registration needs a captcha.
    pub fn enabled(&self) -> bool {
        self.settings.secret.is_some()
    }

    /// Checks `token`; a validation error on `captcha_token` when missing or
    /// rejected, `Unavailable` when the provider cannot be asked.
    pub async fn verify(&self, token: Option<&str>, ip: IpAddr) -> Result<()> {
        let Some(secret) = &self.settings.secret else {
            return Ok(());
        };
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::field("captcha_token", "is required"))?;
        if token.len() > 4096 {
            return Err(Error::field("captcha_token", "was rejected"));
        }
        let ip = ip.to_string();
        let form = [
            ("secret", secret.expose()),
            ("response", token),
            ("remoteip", ip.as_str()),
        ];
        let unavailable = |e: reqwest::Error| {
            tracing::error!(error = %e, "captcha provider unavailable");
            Error::Unavailable("the captcha provider is unavailable; try again later".into())
        };
        let answer = self
            .http
            .post(&self.settings.verify_url)
            .form(&form)
            .send()
            .await
            .map_err(unavailable)?;
        if !answer.status().is_success() {
            tracing::error!(status = %answer.status(), "captcha provider answered with an error");
            return Err(Error::Unavailable(
                "the captcha provider is unavailable; try again later".into(),
            ));
        }
        let body: SiteVerify = answer.json().await.map_err(unavailable)?;
        if body.success {
            Ok(())
        } else {
            Err(Error::field("captcha_token", "was rejected"))
        }
    }
}
