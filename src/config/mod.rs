//! Configuration: one [`Settings`] type, layered defaults → TOML file →
//! `GATEHOUSE_SECTION__KEY` environment variables ([`load`]), and the live
//! handle that hot reload swaps ([`hot`]).
//!
//! Hot keys (`[tokens]`, `[rate_limits]`, `accounts.activation_ttl`,
//! `accounts.reset_ttl`, `accounts.unactivated_ttl`,
//! `accounts.login_session_ttl`) take effect for the next request after a
//! reload. Every other key is cold: a reload that changes one logs that a
//! restart is needed and keeps the running value, so a process never runs
//! half of a new database or key configuration.
//!
//! (Over 500 lines on purpose: one documented type per TOML section with
//! its defaults, so the configuration reference reads top to bottom.)

mod hot;
mod load;
mod values;

pub use hot::LiveSettings;
pub use load::ConfigError;
pub use values::{Rate, Secret};

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Default location of the config file, used when it exists and no other
/// path was given.
pub const DEFAULT_CONFIG_PATH: &str = "config/gatehouse.toml";

/// Everything Gatehouse can be configured with. Sections mirror the TOML file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct Settings {
    /// HTTP listener and the public face of the server.
    pub server: ServerSettings,
    /// Log format and level.
    pub log: LogSettings,
    /// SQL database (SQLite or PostgreSQL).
    pub database: DatabaseSettings,
    /// Optional Redis for shared limits and the deny-list cache.
    pub redis: RedisSettings,
    /// Signing keys.
    pub keys: KeySettings,
    /// Token lifetimes and defaults (hot).
    pub tokens: TokenSettings,
    /// Registration, activation and reset.
    pub accounts: AccountSettings,
    /// Argon2id parameters.
    pub password_hash: PasswordHashSettings,
    /// Outgoing mail.
    pub mail: MailSettings,
    /// Rate limits (hot).
    pub rate_limits: RateLimitSettings,
    /// Optional captcha on registration.
    pub captcha: CaptchaSettings,
    /// OAuth clients; empty means first-party mode (any client_id is public).
    pub clients: Vec<ClientSettings>,
}

/// `[server]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Base URL clients reach the server at; also the token issuer.
    pub public_url: String,
    /// Peers whose `X-Forwarded-For` header is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Browser origins allowed to call the API (CORS).
    pub cors_origins: Vec<String>,
    /// IPv6 clients are limited by this prefix (one /64 is one subscriber:
    /// its owner holds every address in it).
    pub ipv6_prefix: u8,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: "http://127.0.0.1:8080".into(),
            trusted_proxies: Vec::new(),
            max_body_bytes: 65536,
            cors_origins: Vec::new(),
            ipv6_prefix: 64,
        }
    }
}

impl ServerSettings {
    /// Whether `peer` may set the client address through `X-Forwarded-For`.
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    /// The client as limits see it: an IPv4 address, or the IPv6 network of
    /// `ipv6_prefix` bits that holds the address.
    pub fn client_of(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(_) => ip,
            // 100::/64 (RFC 6666) holds the opaque stand-ins for garbled
            // X-Forwarded-For hops: each is a client of its own.
            IpAddr::V6(v6) if v6.segments()[..4] == [0x100, 0, 0, 0] => ip,
            IpAddr::V6(v6) => ipnet::Ipv6Net::new(v6, self.ipv6_prefix)
                .map_or(ip, |net| IpAddr::V6(net.network())),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `gatehouse=debug,info`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[database]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`.
    pub url: Secret,
    /// Pool size; unset: [`DatabaseSettings::pool_size`] chooses.
    pub max_connections: Option<u32>,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("sqlite://gatehouse.db?mode=rwc"),
            max_connections: None,
        }
    }
}

impl DatabaseSettings {
    /// The pool size: `max_connections`, or else for SQLite two per CPU this
    /// process may use, 2 to 16 (each connection is a thread and a page
    /// cache, and SQLite writes one at a time, so more only cost memory and
    /// thread switches), for PostgreSQL 16 (connections there are sockets,
    /// waiting costs nothing here).
    pub fn pool_size(&self) -> u32 {
        self.max_connections.unwrap_or_else(|| {
            if self.url.expose().starts_with("sqlite:") {
                let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
                u32::try_from(cpus.saturating_mul(2).clamp(2, 16)).unwrap_or(16)
            } else {
                16
            }
        })
    }
}

/// `[redis]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// Unset: in-memory limits and deny list (one replica only).
    pub url: Option<Secret>,
    /// Prefix of every key; replicas of one deployment share it, separate
    /// deployments on one Redis use different ones.
    pub prefix: String,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: None,
            prefix: "gatehouse".into(),
        }
    }
}

/// `[keys]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KeySettings {
    /// Size of generated RSA keys.
    pub rsa_bits: usize,
    /// JWKS `Cache-Control` max-age, and how long a rotated-in key is
    /// published before it signs.
    #[serde(with = "humantime_serde")]
    pub jwks_max_age: Duration,
    /// A PEM private key to sign with instead of a generated one.
    pub private_key_file: Option<PathBuf>,
    /// 32 bytes, base64: encrypts stored private keys at rest.
    pub encryption_key: Option<Secret>,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            rsa_bits: 2048,
            jwks_max_age: Duration::from_secs(600),
            private_key_file: None,
            encryption_key: None,
        }
    }
}

/// `[tokens]` (hot)
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    /// Access-token lifetime.
    #[serde(with = "humantime_serde")]
    pub access_ttl: Duration,
    /// Refresh-token lifetime.
    #[serde(with = "humantime_serde")]
    pub refresh_ttl: Duration,
    /// A just-rotated refresh token replayed within this gets the same child.
    #[serde(with = "humantime_serde")]
    pub refresh_reuse_grace: Duration,
    /// ID-token lifetime.
    #[serde(with = "humantime_serde")]
    pub id_token_ttl: Duration,
    /// Scope granted when a request names none.
    pub default_scope: String,
    /// A refresh-token family cannot be refreshed longer than this after
    /// its login, however active: sessions end.
    #[serde(with = "humantime_serde")]
    pub session_max_lifetime: Duration,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(7 * 24 * 3600),
            refresh_reuse_grace: Duration::from_secs(10),
            id_token_ttl: Duration::from_secs(15 * 60),
            default_scope: "openid profile email".into(),
            session_max_lifetime: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// `[accounts]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AccountSettings {
    /// New users must enter the emailed code before they can log in.
    pub require_activation: bool,
    /// Activation code lifetime (hot).
    #[serde(with = "humantime_serde")]
    pub activation_ttl: Duration,
    /// Password-reset link lifetime (hot).
    #[serde(with = "humantime_serde")]
    pub reset_ttl: Duration,
    /// Page the reset email links to; `?token=…` is appended. Unset: the
    /// hosted page, `{server.public_url}/password/reset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_url: Option<String>,
    /// Shortest password accepted.
    pub password_min_length: usize,
    /// Accounts never activated are deleted this long after registering
    /// (hot), so an address cannot be held by a registration nobody proves.
    #[serde(with = "humantime_serde")]
    pub unactivated_ttl: Duration,
    /// How long a browser stays logged in at the hosted pages (hot): a
    /// second application's login within it needs no password.
    #[serde(with = "humantime_serde")]
    pub login_session_ttl: Duration,
}

impl Default for AccountSettings {
    fn default() -> Self {
        Self {
            require_activation: true,
            activation_ttl: Duration::from_secs(30 * 60),
            reset_ttl: Duration::from_secs(3600),
            reset_url: None,
            password_min_length: 8,
            unactivated_ttl: Duration::from_secs(7 * 24 * 3600),
            login_session_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

/// `[password_hash]` (Argon2id)
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordHashSettings {
    /// Memory per hash, KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
    /// Hashes computed at once; 0 means one per CPU. Bounds memory under a
    /// login flood to about `concurrency × memory_kib`.
    pub concurrency: usize,
}

impl Default for PasswordHashSettings {
    fn default() -> Self {
        Self {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
            concurrency: 0,
        }
    }
}

/// `[mail]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MailSettings {
    /// `log`, `file` or `smtp`.
    pub transport: MailTransportKind,
    /// From header.
    pub from: String,
    /// Product named in subjects and bodies.
    pub product_name: String,
    /// lettre URL: `smtp://host:port`, `smtps://…`, `smtp://…?tls=required`.
    pub smtp_url: Option<Secret>,
    /// Directory for the `file` transport.
    pub file_dir: PathBuf,
    /// SMTP timeout per attempt.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts per message before it is dropped (and counted as failed).
    pub max_attempts: u32,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            transport: MailTransportKind::Log,
            from: "Gatehouse <no-reply@localhost>".into(),
            product_name: "Gatehouse".into(),
            smtp_url: None,
            file_dir: PathBuf::from("mail"),
            timeout: Duration::from_secs(10),
            max_attempts: 5,
        }
    }
}

/// How mail leaves the server.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MailTransportKind {
    /// Write whole messages to the log (local use only).
    Log,
    /// One `.eml` file per message.
    File,
    /// Send through an SMTP relay.
    Smtp,
}

/// `[rate_limits]` (hot)
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Password grants per client IP.
    pub login_per_ip: Rate,
    /// Failed password grants per (account, client IP).
    pub login_failures_per_account_ip: Rate,
    /// Failed password grants per account, all IPs.
    pub login_failures_per_account: Rate,
    /// Registrations per client IP.
    pub register_per_ip: Rate,
    /// Forgot-password requests per client IP.
    pub forgot_per_ip: Rate,
    /// Forgot-password requests per email.
    pub forgot_per_email: Rate,
    /// Failed activation attempts per (account, client).
    pub activation_per_account: Rate,
    /// Activation resends per (email, client).
    pub resend_per_email: Rate,
    /// Failed activation attempts per client, all accounts.
    pub activation_per_ip: Rate,
    /// Failed activation attempts across the whole deployment.
    pub activation_global: Rate,
    /// Requests per client to every other endpoint that needs no login:
    /// activate, resend, reset, refresh, revoke, introspect.
    pub unauthenticated_per_ip: Rate,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        let r = |count, secs| Rate {
            count,
            period: Duration::from_secs(secs),
        };
        Self {
            login_per_ip: r(20, 60),
            login_failures_per_account_ip: r(5, 15 * 60),
            login_failures_per_account: r(50, 3600),
            register_per_ip: r(10, 3600),
            forgot_per_ip: r(10, 3600),
            forgot_per_email: r(3, 3600),
            activation_per_account: r(5, 10 * 60),
            resend_per_email: r(3, 10 * 60),
            activation_per_ip: r(30, 3600),
            activation_global: r(600, 60),
            unauthenticated_per_ip: r(600, 60),
        }
    }
}

/// `[captcha]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaptchaSettings {
    /// Set to require a captcha on registration.
    pub secret: Option<Secret>,
    /// The provider's siteverify endpoint.
    pub verify_url: String,
    /// How long to wait for the provider.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for CaptchaSettings {
    fn default() -> Self {
        Self {
            secret: None,
            verify_url: "https://www.google.com/recaptcha/api/siteverify".into(),
            timeout: Duration::from_secs(5),
        }
    }
}

/// One `[[clients]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    /// The `client_id`.
    pub id: String,
    /// Makes the client confidential.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Grants it may use; empty means `authorization_code` and
    /// `refresh_token` (the password grant only when listed).
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// Where authorization responses may go: exact strings. An
    /// `http://127.0.0.1`, `http://[::1]` or `http://localhost` URI matches
    /// with any port (RFC 8252 §7.3).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser afterwards.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// `aud` of its access tokens; default the client id.
    #[serde(default)]
    pub audience: Option<String>,
    /// The `typ` header of its access tokens: `at+jwt` (RFC 9068, the
    /// default; authlib's RFC 9068 validator wants it) or `JWT` (Spring
    /// Security resource servers refuse any other).
    #[serde(default)]
    pub access_token_typ: AccessTokenTyp,
    /// The algorithm its access and ID tokens are signed with (OIDC's
    /// `id_token_signed_response_alg`): `RS256` (the default), `ES256` or
    /// `EdDSA`. A key of each algorithm some client names is made, rotated
    /// and published beside the RSA key.
    #[serde(default)]
    pub signing_alg: SigningAlg,
}

/// A JWS algorithm tokens can be signed with (RFC 7518 §3.1, RFC 8037).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, a 2048-bit (`keys.rsa_bits`) key.
    #[default]
    RS256,
    /// ECDSA on P-256 with SHA-256: a signature costs a few percent of RS256's.
    ES256,
    /// Ed25519 (RFC 8037).
    EdDSA,
}

impl SigningAlg {
    /// Every algorithm, RS256 first.
    pub const ALL: [SigningAlg; 3] = [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA];

    /// The JOSE name (`alg`).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }

    /// The algorithm named `name`, if it is one of ours.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// The `typ` header of a client's access tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessTokenTyp {
    /// `at+jwt` (RFC 9068 §2.1).
    #[default]
    #[serde(rename = "at+jwt")]
    AtJwt,
    /// `JWT`, for resource servers that refuse `at+jwt`.
    #[serde(rename = "JWT")]
    Jwt,
}

impl AccessTokenTyp {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessTokenTyp::AtJwt => "at+jwt",
            AccessTokenTyp::Jwt => "JWT",
        }
    }
}

impl Settings {
    /// The algorithms keys are kept for: RS256 always (the default and the
    /// built-in clients'), and each one a configured client names.
    pub fn signing_algs(&self) -> Vec<SigningAlg> {
        let mut algs: Vec<SigningAlg> = std::iter::once(SigningAlg::RS256)
            .chain(self.clients.iter().map(|c| c.signing_alg))
            .collect();
        algs.sort_unstable();
        algs.dedup();
        algs
    }

    /// The page reset emails link to (`accounts.reset_url`, by default
    /// under `server.public_url`, so it follows the deployment's address).
    pub fn reset_url(&self) -> String {
        self.accounts
            .reset_url
            .clone()
            .unwrap_or_else(|| format!("{}/password/reset", self.server.public_url))
    }

    /// The single-use link mailed for `token`: the reset page with
    /// `token=` appended to its query.
    pub fn reset_link(&self, token: &str) -> String {
        let url = self.reset_url();
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}token={token}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_rate_string_parses_or_explains(s in ".{0,40}") {
            if let Ok(r) = s.parse::<Rate>() {
                prop_assert!(r.count > 0 && !r.period.is_zero());
            }
        }

        #[test]
        fn rates_round_trip_through_display(count in 1u32..100_000, secs in 1u64..10_000_000) {
            let r = Rate { count, period: Duration::from_secs(secs) };
            prop_assert_eq!(r.to_string().parse::<Rate>(), Ok(r));
        }

        #[test]
        fn any_duration_value_loads_or_names_its_key(v in "[ -~]{0,20}") {
            let toml = format!("[tokens]\naccess_ttl = {}\n", toml::Value::String(v));
            match Settings::from_toml(&toml) {
                Ok(s) => prop_assert!(!s.tokens.access_ttl.is_zero()),
                Err(e) => prop_assert!(e.to_string().contains("access_ttl"), "{}", e),
            }
        }
    }

    #[test]
    fn rates_parse_with_count_and_period() {
        let r: Rate = "5/10m".parse().expect("valid");
        assert_eq!(
            r,
            Rate {
                count: 5,
                period: Duration::from_secs(600)
            }
        );
        let r: Rate = "20/m".parse().expect("valid");
        assert_eq!(r.period, Duration::from_secs(60));
        for bad in ["", "5", "x/1m", "0/1m", "5/0s", "5/soon", "-1/1m"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_bad_duration_names_its_key() {
        let err = Settings::from_toml("[tokens]\naccess_ttl = \"soon\"\n").expect_err("bad");
        assert!(err.to_string().contains("access_ttl"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Settings::from_toml("[tokens]\naccess_tll = \"5m\"\n").expect_err("bad");
        assert!(err.to_string().contains("access_tll"), "{err}");
    }

    #[test]
    fn secrets_are_masked() {
        let s = Secret::new("postgres://user:hunter2@db/gatehouse");
        assert_eq!(format!("{s:?}"), "postgres://***@db/gatehouse");
        let mut settings = Settings::default();
        settings.database.url = s;
        settings.captcha.secret = Some(Secret::new("captcha-secret"));
        let out = settings.masked_toml();
        assert!(
            !out.contains("hunter2") && !out.contains("captcha-secret"),
            "{out}"
        );
    }

    #[test]
    fn the_pool_is_sized_for_the_database_unless_set() {
        let mut db = DatabaseSettings::default();
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        assert_eq!(
            db.pool_size() as usize,
            (2 * cpus).clamp(2, 16),
            "SQLite: two per CPU"
        );
        db.url = Secret::new("postgres://u@db/gatehouse");
        assert_eq!(db.pool_size(), 16);
        db.max_connections = Some(5);
        assert_eq!(db.pool_size(), 5);
    }

    #[test]
    fn only_hot_sections_apply_on_reload() {
        let old = Settings::default();
        let mut new = Settings::default();
        new.tokens.access_ttl = Duration::from_secs(60);
        new.database.max_connections = Some(3);
        let (merged, cold) = old.apply_hot(&new);
        assert_eq!(merged.tokens.access_ttl, Duration::from_secs(60));
        assert_eq!(merged.database.max_connections, None);
        assert_eq!(cold, vec!["database"]);
    }
}
