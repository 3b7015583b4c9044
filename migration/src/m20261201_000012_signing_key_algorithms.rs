use sea_orm_migration::sea_orm::{ConnectionTrait, Statement, TransactionTrait};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Every column but `alg`, in both tables' order, for the copy.
const COLUMNS: &str = "kid, generation, private_key, public_jwk, created_at, activates_at, \
                       retired_at, published_until";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Keys of several algorithms (RS256, ES256, EdDSA), each rotated in
        // its own generations: `generation` becomes unique per `alg`. SQLite
        // cannot drop a column's UNIQUE, so the table is rebuilt, in one
        // transaction: processes starting together on one SQLite file race
        // here, and the loser fails, retries and finds the work done.
        let txn = manager.get_connection().begin().await?;
        let manager = SchemaManager::new(&txn);
        if manager.has_column("signing_keys", "alg").await? {
            return txn.commit().await;
        }
        manager
            .create_table(
                Table::create()
                    .table(New::Table)
                    .col(string_len(SigningKeys::Kid, 64).primary_key())
                    .col(string_len(SigningKeys::Alg, 16).default("RS256"))
                    .col(big_integer(SigningKeys::Generation))
                    .col(text(SigningKeys::PrivateKey))
                    .col(text(SigningKeys::PublicJwk))
                    .col(timestamp_with_time_zone(SigningKeys::CreatedAt))
                    .col(timestamp_with_time_zone(SigningKeys::ActivatesAt))
                    .col(timestamp_with_time_zone_null(SigningKeys::RetiredAt))
                    .col(timestamp_with_time_zone_null(SigningKeys::PublishedUntil))
                    .to_owned(),
            )
            .await?;
        txn.execute(Statement::from_string(
            txn.get_database_backend(),
            format!(
                "INSERT INTO signing_keys_by_alg (alg, {COLUMNS}) \
                 SELECT 'RS256', {COLUMNS} FROM signing_keys"
            ),
        ))
        .await?;
        manager
            .drop_table(Table::drop().table(SigningKeys::Table).to_owned())
            .await?;
        manager
            .rename_table(
                Table::rename()
                    .table(New::Table, SigningKeys::Table)
                    .to_owned(),
            )
            .await?;
        // Unique: concurrent first starts race to insert generation 1 of an
        // algorithm and exactly one wins; a rotation inserts max + 1.
        manager
            .create_index(
                Index::create()
                    .name("signing_keys_alg_generation")
                    .table(SigningKeys::Table)
                    .col(SigningKeys::Alg)
                    .col(SigningKeys::Generation)
                    .unique()
                    .to_owned(),
            )
            .await?;
        txn.commit().await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute(Statement::from_string(
            db.get_database_backend(),
            "DELETE FROM signing_keys WHERE alg <> 'RS256'".to_owned(),
        ))
        .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("signing_keys_alg_generation")
                    .table(SigningKeys::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SigningKeys::Table)
                    .drop_column(SigningKeys::Alg)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum New {
    #[sea_orm(iden = "signing_keys_by_alg")]
    Table,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Alg,
    Generation,
    PrivateKey,
    PublicJwk,
    CreatedAt,
    ActivatesAt,
    RetiredAt,
    PublishedUntil,
}
