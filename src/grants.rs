//! The grant types Gatehouse knows (RFC 6749 §1.3): the one list that
//! config validation, client checks, the token endpoint and discovery read.

/// Resource owner password credentials (RFC 6749 §4.3).
pub const PASSWORD: &str = "password";
/// Refresh token (RFC 6749 §6).
pub const REFRESH_TOKEN: &str = "refresh_token";

/// Every grant type the token endpoint answers.
pub const ALL: &[&str] = &[PASSWORD, REFRESH_TOKEN];

/// Whether `grant` is one Gatehouse knows.
pub fn is_known(grant: &str) -> bool {
    ALL.contains(&grant)
}
