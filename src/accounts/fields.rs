//! Parsed account fields: an invalid value cannot exist past the edge.

use crate::error::FieldErrors;

/// Longest email (RFC 5321 path limit).
pub const EMAIL_MAX: usize = 254;
/// Username length range.
pub const USERNAME_LEN: std::ops::RangeInclusive<usize> = 3..=32;
/// Longest given or family name.
pub const NAME_MAX: usize = 100;

/// Collects problems per field while a request is parsed.
#[derive(Default, Debug)]
pub struct Problems(pub FieldErrors);

impl Problems {
    /// Records a problem with `field`.
    pub fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(problem.into());
    }

    /// Records the result of a parse, returning the value if it was valid.
    pub fn take<T>(&mut self, field: &str, r: Result<T, String>) -> Option<T> {
        r.map_err(|p| self.add(field, p)).ok()
    }

    /// `Err(Validation)` when any problem was recorded.
    pub fn finish(self) -> crate::error::Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(crate::error::Error::Validation(self.0))
        }
    }
}

/// The one form emails and usernames are compared in: trimmed, Unicode
/// NFKC (compatibility composition, so that look-alikes such as U+212A
/// KELVIN SIGN or full-width letters become the letters they imitate),
/// then lower-cased. Every lookup and uniqueness key goes through it.
pub fn canonical(raw: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    raw.trim().nfkc().collect::<String>().to_lowercase()
}

/// An email address, syntax-checked, at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses an email.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("is required".into());
        }
        if s.chars().count() > EMAIL_MAX {
            return Err(format!("must be at most {EMAIL_MAX} characters"));
        }
        let ok = s
            .parse::<lettre::Address>()
            .is_ok_and(|a| a.domain().contains('.'));
        if !ok {
            return Err("is not a valid email address".into());
        }
        Ok(Self(s.to_owned()))
    }

    /// As typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The uniqueness key: [`canonical`].
    pub fn normalized(&self) -> String {
        canonical(&self.0)
    }
}

/// A username: 3–32 letters, digits, `.`, `_` or `-`, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Parses a username.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if !USERNAME_LEN.contains(&s.chars().count()) {
            return Err(format!(
                "must be {} to {} characters",
                USERNAME_LEN.start(),
                USERNAME_LEN.end()
            ));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            || !s.starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            return Err("may contain only letters, digits, '.', '_' and '-', and must start with a letter or digit".into());
        }
        Ok(Self(s.to_owned()))
    }

    /// As typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A person's given or family name: 1–100 characters, no control characters.
pub fn parse_name(raw: &str) -> Result<String, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.chars().count() > NAME_MAX {
        return Err(format!("must be at most {NAME_MAX} characters"));
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(s.to_owned())
}

/// A phone number in E.164 form: `+`, then 7 to 15 digits, not starting with 0.
pub fn parse_phone(raw: &str) -> Result<String, String> {
    let s: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    let digits = s.strip_prefix('+').unwrap_or("");
    let ok = (7..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(s)
    } else {
        Err("must be in international format, e.g. +14155550123".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_accept_good_values_and_explain_bad_ones() {
        assert_eq!(
            Email::parse(" Alice@Example.com ")
                .expect("ok")
                .normalized(),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "alice@localhost",
            "a b@c.d",
            &format!("{}@x.io", "a".repeat(250)),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Username::parse("alice_01").is_ok());
        for bad in ["al", "-alice", "al ice", "alice@x", &"a".repeat(33)] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_phone("+1 415-555-0123").expect("ok"), "+14155550123");
        for bad in ["4155550123", "+0123456789", "+12", "+1415555012x"] {
            assert!(parse_phone(bad).is_err(), "{bad:?}");
        }
        assert!(parse_name("Ada").is_ok());
        assert!(parse_name("a\u{7}b").is_err());
    }
}

#[cfg(test)]
mod canonical_tests {
    use super::canonical;

    #[test]
    fn look_alikes_share_one_canonical_form() {
        for (a, b) in [
            ("\u{212A}ate@example.com", "kate@example.com"),
            ("KATE@Example.COM", "kate@example.com"),
            ("\u{FF4B}ate@example.com", "kate@example.com"),
            ("  kate@example.com ", "kate@example.com"),
            ("e\u{301}@example.com", "\u{e9}@example.com"),
        ] {
            assert_eq!(canonical(a), canonical(b), "{a} ~ {b}");
        }
        assert_ne!(canonical("kate@example.com"), canonical("kat@example.com"));
    }
}
