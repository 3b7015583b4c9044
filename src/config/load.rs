//! Loading the configuration: layers, validation, masking.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

use super::{DEFAULT_CONFIG_PATH, MailTransportKind, Secret, Settings};

/// Environment variables with this prefix override file values.
const ENV_PREFIX: &str = "GATEHOUSE_";

/// `GATEHOUSE_*` variables that are not configuration keys.
const ENV_NOT_KEYS: &[&str] = &["CONFIG", "LOG_FORMAT"];

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key had a bad value, or the file could not be parsed.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// The named file does not exist.
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        // Figment names the key path and the source (file or env variable).
        let msgs: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
        ConfigError::Invalid(msgs.join("; "))
    }
}

impl Settings {
    /// Loads every layer: defaults, then `path` (or the default file when it
    /// exists), then the environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match path {
            Some(p) if !p.exists() => return Err(ConfigError::Missing(p.to_path_buf())),
            Some(p) => figment = figment.merge(Toml::file_exact(p)),
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_PATH));
            }
            None => {}
        }
        figment = figment.merge(env_provider());
        let settings: Settings = figment.extract()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Loads from a TOML string and the environment (used by tests).
    pub fn from_toml(toml: &str) -> Result<Self, ConfigError> {
        let settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::string(toml))
            .extract()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Rules that span keys or that serde cannot express.
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError::Invalid(format!("{key}: {why}")));
        if self.server.public_url.ends_with('/') {
            return bad("server.public_url", "must not end with a slash");
        }
        if !(self.server.public_url.starts_with("http://")
            || self.server.public_url.starts_with("https://"))
        {
            return bad("server.public_url", "must be an http:// or https:// URL");
        }
        // Durations bounded at load, so that no `DateTime + Duration` can
        // overflow and a typo ("15d" for "15m") is caught where it is made.
        const MINUTE: Duration = Duration::from_secs(60);
        const DAY: Duration = Duration::from_secs(24 * 3600);
        for (key, value, min, max) in [
            (
                "tokens.access_ttl",
                self.tokens.access_ttl,
                Duration::from_secs(1),
                DAY,
            ),
            (
                "tokens.id_token_ttl",
                self.tokens.id_token_ttl,
                Duration::from_secs(1),
                DAY,
            ),
            (
                "tokens.refresh_ttl",
                self.tokens.refresh_ttl,
                MINUTE,
                366 * DAY,
            ),
            (
                "tokens.session_max_lifetime",
                self.tokens.session_max_lifetime,
                MINUTE,
                366 * DAY,
            ),
            (
                "tokens.refresh_reuse_grace",
                self.tokens.refresh_reuse_grace,
                Duration::ZERO,
                5 * MINUTE,
            ),
            (
                "accounts.activation_ttl",
                self.accounts.activation_ttl,
                MINUTE,
                7 * DAY,
            ),
            (
                "accounts.reset_ttl",
                self.accounts.reset_ttl,
                MINUTE,
                7 * DAY,
            ),
            (
                "accounts.unactivated_ttl",
                self.accounts.unactivated_ttl,
                MINUTE,
                366 * DAY,
            ),
            (
                "accounts.login_session_ttl",
                self.accounts.login_session_ttl,
                MINUTE,
                366 * DAY,
            ),
            (
                "keys.jwks_max_age",
                self.keys.jwks_max_age,
                Duration::ZERO,
                7 * DAY,
            ),
        ] {
            if value < min || value > max {
                return bad(
                    key,
                    &format!(
                        "must be between {} and {}",
                        humantime::format_duration(min),
                        humantime::format_duration(max)
                    ),
                );
            }
        }
        if let Err(e) = crate::scope::Scope::parse(&self.tokens.default_scope) {
            return bad("tokens.default_scope", &e.to_string());
        }
        if !(1..=128).contains(&self.server.ipv6_prefix) {
            return bad("server.ipv6_prefix", "must be between 1 and 128");
        }
        if self.keys.rsa_bits < 2048 || self.keys.rsa_bits > 8192 {
            return bad("keys.rsa_bits", "must be between 2048 and 8192");
        }
        if self.tokens.access_ttl.is_zero() {
            return bad("tokens.access_ttl", "must be longer than zero");
        }
        if self.tokens.refresh_ttl.is_zero() {
            return bad("tokens.refresh_ttl", "must be longer than zero");
        }
        if self.tokens.id_token_ttl.is_zero() {
            return bad("tokens.id_token_ttl", "must be longer than zero");
        }
        if self.accounts.password_min_length < 1 || self.accounts.password_min_length > 128 {
            return bad("accounts.password_min_length", "must be between 1 and 128");
        }
        if self.password_hash.memory_kib < 8 * self.password_hash.parallelism.max(1) {
            return bad(
                "password_hash.memory_kib",
                "must be at least 8 × parallelism",
            );
        }
        if self.password_hash.iterations == 0 || self.password_hash.parallelism == 0 {
            return bad(
                "password_hash",
                "iterations and parallelism must be at least 1",
            );
        }
        if self.mail.transport == MailTransportKind::Smtp && self.mail.smtp_url.is_none() {
            return bad(
                "mail.smtp_url",
                "is required when mail.transport = \"smtp\"",
            );
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return bad(
                "mail.from",
                "is not a valid mailbox such as \"Name <a@b.example>\"",
            );
        }
        if self.database.max_connections == Some(0) {
            return bad("database.max_connections", "must be at least 1");
        }
        if let Some(key) = &self.keys.encryption_key {
            use base64::Engine as _;
            let ok = base64::engine::general_purpose::STANDARD
                .decode(key.expose())
                .is_ok_and(|k| k.len() == 32);
            if !ok {
                return bad("keys.encryption_key", "must be 32 bytes, base64-encoded");
            }
        }
        for (i, c) in self.clients.iter().enumerate() {
            if c.id.is_empty() {
                return bad(&format!("clients[{i}].id"), "must not be empty");
            }
            for g in &c.grant_types {
                if !crate::grants::is_known(g) {
                    return bad(
                        &format!("clients[{i}].grant_types"),
                        &format!("knows only {}", crate::grants::ALL.join(", ")),
                    );
                }
            }
            let uris = c.redirect_uris.iter().map(|u| ("redirect_uris", u));
            let logout = c
                .post_logout_redirect_uris
                .iter()
                .map(|u| ("post_logout_redirect_uris", u));
            for (key, uri) in uris.chain(logout) {
                // RFC 6749 §3.1.2: absolute, no fragment.
                let absolute = uri.split_once(':').is_some_and(|(scheme, rest)| {
                    !scheme.is_empty()
                        && scheme
                            .chars()
                            .all(|ch| ch.is_ascii_alphanumeric() || "+-.".contains(ch))
                        && !rest.is_empty()
                });
                if !absolute || uri.contains('#') || uri.chars().any(char::is_whitespace) {
                    return bad(
                        &format!("clients[{i}].{key}"),
                        "must be absolute URIs without a fragment",
                    );
                }
            }
        }
        Ok(())
    }

    /// The effective configuration as TOML, with every secret masked.
    pub fn masked_toml(&self) -> String {
        let mut copy = self.clone();
        let mask = |s: &mut Secret| *s = Secret::new(s.masked());
        mask(&mut copy.database.url);
        copy.redis.url.as_mut().map(mask);
        copy.keys.encryption_key.as_mut().map(mask);
        copy.mail.smtp_url.as_mut().map(mask);
        copy.captcha.secret.as_mut().map(mask);
        for c in &mut copy.clients {
            c.secret.as_mut().map(mask);
        }
        toml::to_string_pretty(&copy).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

/// Environment overrides: `GATEHOUSE_SECTION__KEY`. Variables that are not
/// keys (no `__`) are warned about rather than refused, because the prefix is
/// shared with tooling variables such as `GATEHOUSE_TEST_DATABASE_URL`.
fn env_provider() -> Env {
    for (name, _) in std::env::vars() {
        if let Some(rest) = name.strip_prefix(ENV_PREFIX)
            && !rest.contains("__")
            && !ENV_NOT_KEYS.contains(&rest)
            && !rest.starts_with("TEST_")
        {
            tracing::warn!(variable = %name, "ignoring {name}: not a GATEHOUSE_SECTION__KEY setting");
        }
    }
    Env::prefixed(ENV_PREFIX)
        .filter(|k| k.as_str().contains("__"))
        .split("__")
}
