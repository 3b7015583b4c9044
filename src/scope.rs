//! OAuth scopes (RFC 6749 §3.3): space-separated, from a fixed set.

use std::collections::BTreeSet;
use std::fmt;

/// A scope Gatehouse does not know (RFC 6749 §5.2 `invalid_scope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownScope(pub String);

impl fmt::Display for UnknownScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown scope `{}`", self.0)
    }
}

/// Every scope Gatehouse grants.
pub const SUPPORTED: &[&str] = &["openid", "profile", "email", "phone", "offline_access"];

/// A set of supported scopes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(BTreeSet<&'static str>);

impl Scope {
    /// Parses a scope string; an unknown scope is `invalid_scope`.
    pub fn parse(raw: &str) -> Result<Self, UnknownScope> {
        let mut set = BTreeSet::new();
        for item in raw.split(' ').filter(|s| !s.is_empty()) {
            match SUPPORTED.iter().find(|s| **s == item) {
                Some(s) => {
                    set.insert(*s);
                }
                None => {
                    return Err(UnknownScope(item.chars().take(40).collect()));
                }
            }
        }
        Ok(Self(set))
    }

    /// Whether `name` is granted.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Whether no scope is granted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        // Keep the order of SUPPORTED rather than alphabetical.
        for s in SUPPORTED.iter().filter(|s| self.0.contains(*s)) {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_render_in_a_stable_order() {
        let s = Scope::parse("email  openid").expect("valid");
        assert_eq!(s.to_string(), "openid email");
        assert!(Scope::parse("openid admin").is_err());
        assert!(Scope::parse("openid").expect("v").is_subset_of(&s));
    }
}
