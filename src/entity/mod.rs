//! sea-orm entities, one file per table. Queries live in each domain
//! module's `store.rs`, not here.

pub mod authorization_codes;
pub mod login_sessions;
pub mod login_sources;
pub mod one_time_codes;
pub mod refresh_tokens;
pub mod revoked_access_tokens;
pub mod server_secrets;
pub mod signing_keys;
pub mod users;
