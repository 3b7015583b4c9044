//! The grant types Gatehouse knows (RFC 6749 §1.3): the one list that
//! config validation, client checks, the token endpoint and discovery read.

/// Authorization code with PKCE (RFC 6749 §4.1, RFC 7636): browser login.
pub const AUTHORIZATION_CODE: &str = "authorization_code";
/// Resource owner password credentials (RFC 6749 §4.3).
pub const PASSWORD: &str = "password";
/// Refresh token (RFC 6749 §6).
pub const REFRESH_TOKEN: &str = "refresh_token";

/// Every grant type the token endpoint answers.
pub const ALL: &[&str] = &[AUTHORIZATION_CODE, PASSWORD, REFRESH_TOKEN];

/// What a configured client that lists no `grant_types` may use: browser
/// login and refresh, not the password grant (RFC 9700 §2.4), which a
/// client must list to get.
pub const CONFIGURED_DEFAULT: &[&str] = &[AUTHORIZATION_CODE, REFRESH_TOKEN];

/// Whether `grant` is one Gatehouse knows.
pub fn is_known(grant: &str) -> bool {
    ALL.contains(&grant)
}
