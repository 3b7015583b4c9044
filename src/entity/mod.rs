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

#[cfg(test)]
mod tests {
    use sea_orm::{EntityTrait, IdenStatic as _, Iterable as _};

    fn columns<E: EntityTrait>() -> Vec<String> {
        E::Column::iter().map(|c| c.as_str().to_owned()).collect()
    }

    #[test]
    fn the_inline_sqlite_columns_are_the_entities() {
        assert_eq!(
            columns::<super::users::Entity>(),
            super::users::SQLITE_COLUMNS
        );
        assert_eq!(
            columns::<super::refresh_tokens::Entity>(),
            super::refresh_tokens::SQLITE_COLUMNS
        );
    }
}
