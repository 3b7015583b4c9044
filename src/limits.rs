//! Rate limits: GCRA (the generic cell rate algorithm) behind one interface,
//! in process memory by default or in Redis (one atomic script call per
//! check) so every replica counts against one limit.
//!
//! Why not `governor` for the memory backend: brute-force throttling must
//! *reserve* an attempt before checking a password and *give it back* when
//! the password was right (so parallel guesses cannot slip past the limit,
//! and a user's own successful logins never lock them out). `governor` has
//! no way to give a cell back; the GCRA below does, and the Redis script is
//! the same arithmetic, so both backends behave alike.
//!
//! In memory, the keys held are bounded ([`MAX_KEYS`]) whatever keys
//! attackers send, in shards that are swept one short lock at a time.
//! `governor`'s keyed limiter was the other candidate for the plain limits:
//! besides having no give-back, its key store grows until `retain_recent`
//! runs and has no ceiling, so one bounded GCRA store serves every limit.
//!
//! Redis down: each replica falls back to its own in-process limits (never
//! to none: filling or cutting Redis must not switch brute-force limits
//! off), with an error log, `gatehouse_redis_errors_total` and
//! `gatehouse_rate_limit_fallbacks_total` counted, and `/readyz` reporting
//! Redis as down. Refusing every login while the cache is away would turn a
//! cache outage into a full outage; per-replica limits are the middle way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::clock::Clock;
use crate::config::{LiveSettings, Rate, RateLimitSettings};
use crate::error::{Error, Result};

/// The limits of `[rate_limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// Password grants per client IP.
    LoginPerIp,
    /// Failed password grants per (account, client IP).
    LoginFailuresPerAccountIp,
    /// Failed password grants per account.
    LoginFailuresPerAccount,
    /// Registrations per client IP.
    RegisterPerIp,
    /// Forgot-password per client IP.
    ForgotPerIp,
    /// Forgot-password per email.
    ForgotPerEmail,
    /// Failed activation attempts per account.
    ActivationPerAccount,
    /// Activation resends per email.
    ResendPerEmail,
    /// Failed activation attempts per client.
    ActivationPerIp,
    /// Failed activation attempts, all clients (key: `all`).
    ActivationGlobal,
    /// Other unauthenticated requests per client.
    UnauthenticatedPerIp,
}

impl LimitKind {
    /// Every limit (for metrics present from the start).
    pub const ALL: [LimitKind; 11] = [
        Self::LoginPerIp,
        Self::LoginFailuresPerAccountIp,
        Self::LoginFailuresPerAccount,
        Self::RegisterPerIp,
        Self::ForgotPerIp,
        Self::ForgotPerEmail,
        Self::ActivationPerAccount,
        Self::ResendPerEmail,
        Self::ActivationPerIp,
        Self::ActivationGlobal,
        Self::UnauthenticatedPerIp,
    ];

    /// The config key, also the metric label and the Redis key part.
    pub fn name(self) -> &'static str {
        match self {
            Self::LoginPerIp => "login_per_ip",
            Self::LoginFailuresPerAccountIp => "login_failures_per_account_ip",
            Self::LoginFailuresPerAccount => "login_failures_per_account",
            Self::RegisterPerIp => "register_per_ip",
            Self::ForgotPerIp => "forgot_per_ip",
            Self::ForgotPerEmail => "forgot_per_email",
            Self::ActivationPerAccount => "activation_per_account",
            Self::ResendPerEmail => "resend_per_email",
            Self::ActivationPerIp => "activation_per_ip",
            Self::ActivationGlobal => "activation_global",
            Self::UnauthenticatedPerIp => "unauthenticated_per_ip",
        }
    }

    fn rate(self, s: &RateLimitSettings) -> Rate {
        match self {
            Self::LoginPerIp => s.login_per_ip,
            Self::LoginFailuresPerAccountIp => s.login_failures_per_account_ip,
            Self::LoginFailuresPerAccount => s.login_failures_per_account,
            Self::RegisterPerIp => s.register_per_ip,
            Self::ForgotPerIp => s.forgot_per_ip,
            Self::ForgotPerEmail => s.forgot_per_email,
            Self::ActivationPerAccount => s.activation_per_account,
            Self::ResendPerEmail => s.resend_per_email,
            Self::ActivationPerIp => s.activation_per_ip,
            Self::ActivationGlobal => s.activation_global,
            Self::UnauthenticatedPerIp => s.unauthenticated_per_ip,
        }
    }
}

/// Period and emission interval of `rate`, in µs: microseconds, not
/// milliseconds, so that rates above 1,000 a second keep their meaning.
fn period_and_interval(rate: Rate) -> (i64, i64) {
    let period = i64::try_from(rate.period.as_micros()).unwrap_or(i64::MAX);
    (period, (period / i64::from(rate.count.max(1))).max(1))
}

/// One GCRA step. `tat` is the theoretical arrival time (µs) stored for the
/// key, `None` when unknown. Returns the new `tat` to store, or `Err(wait)`
/// when the request must wait `wait` µs. A `cost` of -1 gives a cell back.
pub fn gcra(tat: Option<i64>, now: i64, rate: Rate, cost: i64) -> std::result::Result<i64, i64> {
    let (period, interval) = period_and_interval(rate);
    let tat = tat.unwrap_or(now).max(now);
    let new_tat = tat + cost * interval;
    if cost > 0 && new_tat - now > period {
        return Err((new_tat - period - now).max(1));
    }
    Ok(new_tat.max(now))
}

/// Same arithmetic as [`gcra`], run atomically inside Redis. Times are µs
/// since the epoch (exact in Lua's doubles up to 2^53); `%d` writes them
/// without the exponent notation Lua's default number format would use.
const GCRA_LUA: &str = r"
local now = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + cost * interval
if cost > 0 and new_tat - now > period then
  return math.max(new_tat - period - now, 1)
end
if new_tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', string.format('%d', math.ceil((new_tat - now) / 1000)))
end
return 0
";

/// Most keys the in-process limiter holds, all limits together (about
/// 160 bytes each: at most ~16 MiB, whatever keys attackers choose).
pub const MAX_KEYS: usize = 100_000;
/// Independent locks, so that no check waits on a sweep of the whole map.
const SHARDS: usize = 64;

type Shard = HashMap<(LimitKind, String), i64>;

/// The in-process store: sharded, bounded. When a shard is full, expired
/// entries go first, then the entry nearest to expiring: the one whose
/// budget is least used. A budget that has been spent (failed logins on
/// a victim's account) has its state furthest in the future and is the last
/// to go, and flooding keys is itself limited per client first, so eviction
/// cannot be used to reset a budget that matters.
struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    hasher: std::hash::RandomState,
}

impl MemoryStore {
    fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn step(
        &self,
        kind: LimitKind,
        key: &str,
        now: i64,
        rate: Rate,
        cost: i64,
    ) -> std::result::Result<(), i64> {
        use std::hash::BuildHasher as _;
        let shard = self.hasher.hash_one((kind, key)) as usize % SHARDS;
        let Ok(mut map) = self.shards[shard].lock() else {
            return Ok(());
        };
        let k = (kind, key.to_owned());
        let new_tat = gcra(map.get(&k).copied(), now, rate, cost)?;
        if new_tat <= now {
            map.remove(&k);
            return Ok(());
        }
        if !map.contains_key(&k) && map.len() >= MAX_KEYS / SHARDS {
            map.retain(|_, tat| *tat > now);
            if map.len() >= MAX_KEYS / SHARDS {
                // Evict the eighth nearest to expiring at once, so that a
                // flood pays for a scan once per many inserts, not each.
                let mut tats: Vec<i64> = map.values().copied().collect();
                let cut = tats.len() / 8;
                let (_, threshold, _) = tats.select_nth_unstable(cut);
                let threshold = *threshold;
                map.retain(|_, tat| *tat > threshold);
            }
        }
        map.insert(k, new_tat);
        Ok(())
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |m| m.len()))
            .sum()
    }

    /// Drops expired entries, one shard (one short lock) at a time.
    fn sweep(&self, now: i64) {
        for shard in &self.shards {
            if let Ok(mut map) = shard.lock() {
                map.retain(|_, tat| *tat > now);
            }
        }
    }
}

#[derive(Clone)]
enum Backend {
    Memory(Arc<MemoryStore>),
    Redis {
        conn: ConnectionManager,
        script: Arc<redis::Script>,
        prefix: String,
        /// Used while Redis does not answer: per replica, but never none.
        fallback: Arc<MemoryStore>,
    },
}

/// The rate limiter; limits are read from the live settings on every check,
/// so a reload applies to the next request.
#[derive(Clone)]
pub struct Limiter {
    backend: Backend,
    live: LiveSettings,
    clock: Clock,
}

impl Limiter {
    /// In-memory limits, for one replica.
    pub fn memory(live: LiveSettings, clock: Clock) -> Self {
        Self {
            backend: Backend::Memory(Arc::new(MemoryStore::new())),
            live,
            clock,
        }
    }

    /// Limits shared through Redis.
    pub fn redis(
        conn: ConnectionManager,
        prefix: String,
        live: LiveSettings,
        clock: Clock,
    ) -> Self {
        Self {
            backend: Backend::Redis {
                conn,
                script: Arc::new(redis::Script::new(GCRA_LUA)),
                prefix,
                fallback: Arc::new(MemoryStore::new()),
            },
            live,
            clock,
        }
    }

    /// Counts one request against `kind` for `key`; `RateLimited` when over.
    pub async fn check(&self, kind: LimitKind, key: &str) -> Result<()> {
        match self.step(kind, key, 1).await {
            Ok(()) => Ok(()),
            Err(wait_us) => {
                metrics::counter!("gatehouse_rate_limited_total", "limit" => kind.name())
                    .increment(1);
                Err(Error::RateLimited {
                    retry_after: Duration::from_micros(wait_us.max(0) as u64),
                })
            }
        }
    }

    /// Like [`Limiter::check`] but answers `false` instead of an error.
    pub async fn reserve(&self, kind: LimitKind, key: &str) -> bool {
        let ok = self.step(kind, key, 1).await.is_ok();
        if !ok {
            metrics::counter!("gatehouse_rate_limited_total", "limit" => kind.name()).increment(1);
        }
        ok
    }

    /// Gives back one request counted by `check` or `reserve`.
    pub async fn refund(&self, kind: LimitKind, key: &str) {
        let _ = self.step(kind, key, -1).await;
    }

    /// One GCRA step for `key` against `kind`'s current rate; `Err(µs)` to wait.
    async fn step(&self, kind: LimitKind, key: &str, cost: i64) -> std::result::Result<(), i64> {
        let rate = kind.rate(&self.live.get().rate_limits);
        let now = self.clock.now().timestamp_micros();
        match &self.backend {
            Backend::Memory(store) => store.step(kind, key, now, rate, cost),
            Backend::Redis {
                conn,
                script,
                prefix,
                fallback,
            } => {
                let (period, interval) = period_and_interval(rate);
                let mut conn = conn.clone();
                let res: redis::RedisResult<i64> = script
                    .key(format!("{prefix}:gcra:{}:{key}", kind.name()))
                    .arg(now)
                    .arg(period)
                    .arg(interval)
                    .arg(cost)
                    .invoke_async(&mut conn)
                    .await;
                match res {
                    Ok(0) => Ok(()),
                    Ok(wait) => Err(wait),
                    Err(e) => {
                        // Never a free pass (filling Redis would otherwise
                        // switch every limit off): this replica's own limits.
                        tracing::error!(error = %e, limit = kind.name(), "Redis unavailable: limiting in this process");
                        metrics::counter!("gatehouse_redis_errors_total", "op" => "rate_limit")
                            .increment(1);
                        metrics::counter!("gatehouse_rate_limit_fallbacks_total").increment(1);
                        fallback.step(kind, key, now, rate, cost)
                    }
                }
            }
        }
    }

    /// Drops memory entries whose window has passed.
    pub fn sweep(&self) {
        let now = self.clock.now().timestamp_micros();
        match &self.backend {
            Backend::Memory(store)
            | Backend::Redis {
                fallback: store, ..
            } => store.sweep(now),
        }
    }

    /// Keys held in process memory (the bound is [`MAX_KEYS`]).
    pub fn keys_in_memory(&self) -> usize {
        match &self.backend {
            Backend::Memory(store)
            | Backend::Redis {
                fallback: store, ..
            } => store.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_store_stays_bounded_and_keeps_spent_budgets() {
        let store = MemoryStore::new();
        let rate = Rate {
            count: 5,
            period: Duration::from_secs(600),
        };
        // A victim's account has spent its whole failure budget.
        for _ in 0..5 {
            assert!(
                store
                    .step(LimitKind::LoginFailuresPerAccount, "victim", 0, rate, 1)
                    .is_ok()
            );
        }
        // An attacker floods three times the bound with fresh keys.
        for i in 0..3 * MAX_KEYS {
            let _ = store.step(
                LimitKind::ResendPerEmail,
                &format!("k{i}@x.example"),
                0,
                rate,
                1,
            );
        }
        assert!(store.len() <= MAX_KEYS, "{} keys held", store.len());
        assert!(
            store
                .step(LimitKind::LoginFailuresPerAccount, "victim", 0, rate, 1)
                .is_err(),
            "the flood did not reset the spent budget"
        );
    }

    #[test]
    fn gcra_allows_the_burst_then_spaces_requests() {
        let rate = Rate {
            count: 5,
            period: Duration::from_secs(600),
        };
        let mut tat = None;
        for i in 0..5 {
            tat = Some(gcra(tat, 0, rate, 1).unwrap_or_else(|_| panic!("request {i} allowed")));
        }
        let wait = gcra(tat, 0, rate, 1).expect_err("sixth refused");
        assert_eq!(wait, 120_000_000, "one cell frees every period/count");
        assert!(
            gcra(tat, 120_000_000, rate, 1).is_ok(),
            "allowed once a cell frees"
        );
        // A refund gives the cell back at once.
        let back = gcra(tat, 0, rate, -1).expect("refund");
        assert!(gcra(Some(back), 0, rate, 1).is_ok());
    }

    #[test]
    fn rates_above_one_per_millisecond_keep_their_meaning() {
        // 5000/1s: a burst of 5000 at one instant, then one cell per 200 µs.
        let rate = Rate {
            count: 5000,
            period: Duration::from_secs(1),
        };
        let now = 1_700_000_000_000_000;
        let mut tat = None;
        for i in 0..5000 {
            tat = Some(gcra(tat, now, rate, 1).unwrap_or_else(|_| panic!("request {i} allowed")));
        }
        assert_eq!(gcra(tat, now, rate, 1), Err(200));
        assert!(gcra(tat, now + 200, rate, 1).is_ok());
    }
}
