use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite only: inserting a rotation's child marks its parent rotated
        // in the same statement, so a refresh is one atomic statement there
        // (`INSERT … SELECT` of the child from its live parent) instead of a
        // transaction of four. PostgreSQL does the same with a data-modifying
        // CTE and needs no trigger. A parent already marked (the general path
        // marks it first) is left as it is.
        if manager.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TRIGGER IF NOT EXISTS refresh_tokens_child_rotates_parent \
                 AFTER INSERT ON refresh_tokens \
                 WHEN NEW.parent_id IS NOT NULL \
                 BEGIN \
                   UPDATE refresh_tokens SET rotated_at = NEW.created_at, replaced_by = NEW.id \
                   WHERE id = NEW.parent_id AND rotated_at IS NULL; \
                 END",
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared("DROP TRIGGER IF EXISTS refresh_tokens_child_rotates_parent")
            .await
            .map(|_| ())
    }
}
