//! Value types of the configuration: rates and secrets.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A rate: `count` events per `period`, written `"5/10m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// Events allowed in one period (also the burst).
    pub count: u32,
    /// The period.
    pub period: Duration,
}

/// Longest rate period accepted.
const RATE_PERIOD_MAX: Duration = Duration::from_secs(366 * 24 * 3600);
/// Largest rate count accepted.
const RATE_COUNT_MAX: u32 = 1_000_000_000;

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (count, period) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not a rate like \"5/10m\""))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("`{count}` in `{s}` is not a whole number"))?;
        if count == 0 {
            return Err(format!("`{s}`: the count must be at least 1"));
        }
        let period = period.trim();
        // "5/m" reads as "5 per minute".
        let period = if period.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            humantime::parse_duration(period)
        } else {
            humantime::parse_duration(&format!("1{period}"))
        }
        .map_err(|e| format!("`{period}` in `{s}` is not a duration: {e}"))?;
        // Bounded so the limiter's arithmetic (microseconds in an i64 /
        // u64, count × emission interval) cannot overflow or wrap.
        if period < Duration::from_millis(1) {
            return Err(format!("`{s}`: the period must be at least 1ms"));
        }
        if period > RATE_PERIOD_MAX {
            return Err(format!("`{s}`: the period must be at most 366 days"));
        }
        if count > RATE_COUNT_MAX {
            return Err(format!("`{s}`: the count must be at most {RATE_COUNT_MAX}"));
        }
        Ok(Rate { count, period })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.count,
            humantime::format_duration(self.period)
        )
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A configuration value that must not be printed: `Debug`, `Display` and
/// serialization for display show it masked. Use [`Secret::expose`] where the
/// value is really needed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A printable form: URLs keep their scheme and host, any password goes.
    pub fn masked(&self) -> String {
        match self.0.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
                let had_credentials = rest.contains('@');
                if had_credentials {
                    format!("{scheme}://***@{host}")
                } else {
                    format!("{scheme}://{host}")
                }
            }
            None => "***".into(),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

// Serialization exists for the defaults provider and `config check`, so it
// round-trips the real value; `config check` masks through `masked_toml`.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}
