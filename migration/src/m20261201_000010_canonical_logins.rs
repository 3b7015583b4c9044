use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The canonical form of an email or username: trimmed, Unicode NFKC, then
/// lower case. The same as `accounts::fields::canonical` in the server
/// (which this crate cannot import); a migration's copy is frozen with it.
fn canonical(raw: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    raw.trim().nfkc().collect::<String>().to_lowercase()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Keys written before emails and usernames were compared in NFKC
        // form were only lower-cased: recompute them, so that existing
        // accounts are found under their canonical form. Two accounts whose
        // keys now collide keep their old keys (nothing is merged or lost)
        // and are reported for an operator to settle.
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        let rows = db
            .query_all(Statement::from_string(
                backend,
                "SELECT id, email, email_normalized, username, username_normalized FROM users",
            ))
            .await?;
        for row in rows {
            let id: uuid::Uuid = row.try_get("", "id")?;
            let email: String = row.try_get("", "email")?;
            let email_key: String = row.try_get("", "email_normalized")?;
            let username: Option<String> = row.try_get("", "username")?;
            let username_key: Option<String> = row.try_get("", "username_normalized")?;
            for (column, want, have) in [
                ("email_normalized", Some(canonical(&email)), Some(email_key)),
                (
                    "username_normalized",
                    username.as_deref().map(canonical),
                    username_key,
                ),
            ] {
                let Some(want) = want.filter(|w| Some(w) != have.as_ref()) else {
                    continue;
                };
                let sql = match backend {
                    sea_orm_migration::sea_orm::DatabaseBackend::Postgres => {
                        format!("UPDATE users SET {column} = $1 WHERE id = $2")
                    }
                    _ => format!("UPDATE users SET {column} = ? WHERE id = ?"),
                };
                let stmt = Statement::from_sql_and_values(backend, sql, [want.into(), id.into()]);
                if let Err(e) = db.execute(stmt).await {
                    println!(
                        "warning: user {id}: {column} not made canonical ({e}); another account already has that key"
                    );
                }
            }
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
