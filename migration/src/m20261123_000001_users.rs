use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(uuid(Users::Id).primary_key())
                    .col(string_len(Users::Email, 254))
                    .col(string_len_uniq(Users::EmailNormalized, 254))
                    .col(string_len_null(Users::Username, 64))
                    .col(string_len_null(Users::UsernameNormalized, 64).unique_key())
                    .col(string(Users::PasswordHash))
                    .col(string_len_null(Users::GivenName, 100))
                    .col(string_len_null(Users::FamilyName, 100))
                    .col(string_len_null(Users::PhoneNumber, 32))
                    .col(boolean(Users::EmailVerified).default(false))
                    .col(boolean(Users::Activated).default(false))
                    .col(boolean(Users::Disabled).default(false))
                    .col(string(Users::Roles).default(""))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Users {
    Table,
    Id,
    Email,
    EmailNormalized,
    Username,
    UsernameNormalized,
    PasswordHash,
    GivenName,
    FamilyName,
    PhoneNumber,
    EmailVerified,
    Activated,
    Disabled,
    Roles,
    CreatedAt,
    UpdatedAt,
}
