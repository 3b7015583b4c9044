//! Gatehouse: a standalone OAuth 2.0 / OpenID Connect identity provider.
//!
//! Map of the crate, in dependency order (each layer uses only those below):
//!
//! - [`app`]: wiring — builds every service from [`config::Settings`] into one
//!   [`app::AppState`]; [`server::Application`] binds and serves it.
//! - [`api`]: the HTTP layer (poem-openapi). Thin: parse, call one service,
//!   map the result through [`api::error`].
//! - Domain, free of HTTP types: [`accounts`] (registration, activation,
//!   reset, profile), [`tokens`] (grants, rotation, revocation,
//!   introspection), [`keys`] (signing keys, JWKS), [`passwords`] (policy,
//!   Argon2id), [`codes`] (emailed secrets), [`limits`] (rate limits),
//!   [`mail`], [`captcha`], [`clients`], [`grants`], [`scope`].
//! - Support: [`config`] (settings, hot reload via [`reload`]), [`db`] and
//!   [`entity`] (persistence), [`secrets`] and [`sealing`] (server key,
//!   encryption at rest), [`clock`], [`shutdown`], [`telemetry`], [`error`].

pub mod accounts;
pub mod api;
pub mod app;
pub mod captcha;
pub mod clients;
pub mod clock;
pub mod codes;
pub mod config;
pub mod db;
pub mod entity;
pub mod error;
pub mod grants;
pub mod keys;
pub mod limits;
pub mod mail;
pub mod oauth;
pub mod passwords;
pub mod reload;
pub mod scope;
pub mod sealing;
pub mod secrets;
pub mod server;
pub mod sessions;
pub mod shutdown;
pub mod telemetry;
pub mod tokens;
pub mod workers;
