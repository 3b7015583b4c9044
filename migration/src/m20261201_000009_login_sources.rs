use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Where each account last logged in successfully (client address or
        // IPv6 network): such a source keeps its own budget when strangers
        // have spent the account's failure ceiling.
        manager
            .create_table(
                Table::create()
                    .table(LoginSources::Table)
                    .if_not_exists()
                    .col(uuid(LoginSources::UserId))
                    .col(string_len(LoginSources::Source, 64))
                    .col(timestamp_with_time_zone(LoginSources::LastSuccessAt))
                    .primary_key(
                        Index::create()
                            .col(LoginSources::UserId)
                            .col(LoginSources::Source),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_login_sources_user")
                            .from(LoginSources::Table, LoginSources::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LoginSources::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum LoginSources {
    Table,
    UserId,
    Source,
    LastSuccessAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
