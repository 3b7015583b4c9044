use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A browser's login session (its cookie holds the id and a secret;
        // only the secret's hash is stored).
        manager
            .create_table(
                Table::create()
                    .table(LoginSessions::Table)
                    .if_not_exists()
                    .col(uuid(LoginSessions::Id).primary_key())
                    .col(uuid(LoginSessions::UserId))
                    .col(string_len(LoginSessions::SecretHash, 64))
                    .col(timestamp_with_time_zone(LoginSessions::AuthTime))
                    .col(timestamp_with_time_zone(LoginSessions::ExpiresAt))
                    .col(timestamp_with_time_zone_null(LoginSessions::EndedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_login_sessions_user")
                            .from(LoginSessions::Table, LoginSessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_login_sessions_user")
                    .table(LoginSessions::Table)
                    .col(LoginSessions::UserId)
                    .to_owned(),
            )
            .await?;
        // Authorization codes (RFC 6749 §4.1.2), by the hash of their value.
        manager
            .create_table(
                Table::create()
                    .table(AuthorizationCodes::Table)
                    .if_not_exists()
                    .col(string_len(AuthorizationCodes::CodeHash, 64).primary_key())
                    .col(string(AuthorizationCodes::ClientId))
                    .col(text(AuthorizationCodes::RedirectUri))
                    .col(string_len(AuthorizationCodes::CodeChallenge, 128))
                    .col(text_null(AuthorizationCodes::Nonce))
                    .col(string(AuthorizationCodes::Scope))
                    .col(uuid(AuthorizationCodes::UserId))
                    .col(uuid(AuthorizationCodes::LoginSessionId))
                    .col(timestamp_with_time_zone(AuthorizationCodes::AuthTime))
                    .col(timestamp_with_time_zone(AuthorizationCodes::ExpiresAt))
                    .col(timestamp_with_time_zone_null(AuthorizationCodes::UsedAt))
                    .col(uuid_null(AuthorizationCodes::FamilyId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_authorization_codes_user")
                            .from(AuthorizationCodes::Table, AuthorizationCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Which login session a refresh family started from, so logout can
        // end them together.
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .add_column(ColumnDef::new(RefreshTokens::LoginSessionId).uuid().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_login_session")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::LoginSessionId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_refresh_tokens_login_session")
                    .table(RefreshTokens::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .drop_column(RefreshTokens::LoginSessionId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(AuthorizationCodes::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(LoginSessions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum LoginSessions {
    Table,
    Id,
    UserId,
    SecretHash,
    AuthTime,
    ExpiresAt,
    EndedAt,
}

#[derive(DeriveIden)]
enum AuthorizationCodes {
    Table,
    CodeHash,
    ClientId,
    RedirectUri,
    CodeChallenge,
    Nonce,
    Scope,
    UserId,
    LoginSessionId,
    AuthTime,
    ExpiresAt,
    UsedAt,
    FamilyId,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    LoginSessionId,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
