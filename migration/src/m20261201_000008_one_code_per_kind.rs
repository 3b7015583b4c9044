use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One live code of each kind per user: concurrent resends used to
        // leave two. Keep the newest of any duplicates, then let the index
        // make a new code replace the old one atomically (upsert).
        manager
            .get_connection()
            .execute_unprepared(
                "DELETE FROM one_time_codes WHERE id NOT IN ( \
                   SELECT id FROM ( \
                     SELECT id, ROW_NUMBER() OVER ( \
                       PARTITION BY user_id, kind ORDER BY created_at DESC, id DESC \
                     ) AS rn FROM one_time_codes \
                   ) ranked WHERE rn = 1 \
                 )",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("one_time_codes_user_kind")
                    .table(OneTimeCodes::Table)
                    .col(OneTimeCodes::UserId)
                    .col(OneTimeCodes::Kind)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("one_time_codes_user_kind")
                    .table(OneTimeCodes::Table)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum OneTimeCodes {
    Table,
    UserId,
    Kind,
}
