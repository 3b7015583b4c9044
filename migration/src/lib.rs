//! Database migrations for Gatehouse, applied at `gatehouse serve` start and by
//! `gatehouse migrate`. Append-only: never edit a migration once released;
//! add a new `m<date>_<seq>_<name>.rs` instead and list it last below.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_users;
mod m20261123_000002_refresh_tokens;
mod m20261123_000003_signing_keys;
mod m20261123_000004_one_time_codes;
mod m20261123_000005_revoked_access_tokens;
mod m20261123_000006_server_secrets;
mod m20261201_000007_signing_keys_published_until;
mod m20261201_000008_one_code_per_kind;
mod m20261201_000009_login_sources;
mod m20261201_000010_canonical_logins;
mod m20261201_000011_browser_login;
mod m20261201_000012_signing_key_algorithms;
mod m20261201_000013_sqlite_rotation_trigger;

/// Every migration, in the order they apply.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_users::Migration),
            Box::new(m20261123_000002_refresh_tokens::Migration),
            Box::new(m20261123_000003_signing_keys::Migration),
            Box::new(m20261123_000004_one_time_codes::Migration),
            Box::new(m20261123_000005_revoked_access_tokens::Migration),
            Box::new(m20261123_000006_server_secrets::Migration),
            Box::new(m20261201_000007_signing_keys_published_until::Migration),
            Box::new(m20261201_000008_one_code_per_kind::Migration),
            Box::new(m20261201_000009_login_sources::Migration),
            Box::new(m20261201_000010_canonical_logins::Migration),
            Box::new(m20261201_000011_browser_login::Migration),
            Box::new(m20261201_000012_signing_key_algorithms::Migration),
            Box::new(m20261201_000013_sqlite_rotation_trigger::Migration),
        ]
    }
}
