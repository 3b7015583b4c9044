//! Hot reload: which keys a running server takes from a changed file, and
//! the live handle requests read their one snapshot from.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{AccountSettings, Settings};

impl Settings {
    /// Returns `self` with the hot keys of `new` applied, and the names of
    /// cold sections that differ (they need a restart).
    ///
    /// Every field is named below, without `..`: a new section or account
    /// key does not compile until it is declared hot or cold here.
    pub fn apply_hot(&self, new: &Settings) -> (Settings, Vec<&'static str>) {
        let Settings {
            server,
            log,
            database,
            redis,
            keys,
            tokens,
            accounts,
            password_hash,
            mail,
            rate_limits,
            captcha,
            clients,
        } = new;
        let AccountSettings {
            require_activation,
            activation_ttl,
            reset_ttl,
            reset_url,
            password_min_length,
            unactivated_ttl,
            login_session_ttl,
        } = accounts;

        let mut merged = self.clone();
        // Hot: taken from `new`.
        merged.tokens = tokens.clone();
        merged.rate_limits = rate_limits.clone();
        merged.accounts.activation_ttl = *activation_ttl;
        merged.accounts.reset_ttl = *reset_ttl;
        merged.accounts.unactivated_ttl = *unactivated_ttl;
        merged.accounts.login_session_ttl = *login_session_ttl;

        // Cold: kept, and named when they differ.
        let mut cold = Vec::new();
        let mut check = |name, differs: bool| {
            if differs {
                cold.push(name);
            }
        };
        check("server", self.server != *server);
        check("log", self.log != *log);
        check("database", self.database != *database);
        check("redis", self.redis != *redis);
        check("keys", self.keys != *keys);
        check("password_hash", self.password_hash != *password_hash);
        check("mail", self.mail != *mail);
        check("captcha", self.captcha != *captcha);
        check("clients", self.clients != *clients);
        check(
            "accounts",
            self.accounts.require_activation != *require_activation
                || self.accounts.reset_url != *reset_url
                || self.accounts.password_min_length != *password_min_length,
        );
        (merged, cold)
    }
}

/// The live settings: readers take one snapshot per request; hot reload
/// swaps the whole value.
#[derive(Clone)]
pub struct LiveSettings {
    inner: Arc<ArcSwap<Settings>>,
}

impl LiveSettings {
    /// Wraps the settings loaded at start.
    pub fn new(settings: Settings) -> Self {
        Self {
            inner: Arc::new(ArcSwap::from_pointee(settings)),
        }
    }

    /// The current snapshot.
    pub fn get(&self) -> Arc<Settings> {
        self.inner.load_full()
    }

    /// Replaces the settings; returns the cold sections that `new` changes but
    /// that keep their running value.
    pub fn apply(&self, new: &Settings) -> Vec<&'static str> {
        let current = self.get();
        let (merged, cold) = current.apply_hot(new);
        self.inner.store(Arc::new(merged));
        cold
    }
}
