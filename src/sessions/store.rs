//! Queries on `refresh_tokens`.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, IdenStatic,
    IntoActiveModel, Iterable, QueryFilter, QueryTrait, Statement,
};
use uuid::Uuid;

use crate::db::inline::{self, Inline};
use crate::entity::refresh_tokens::{self, Column, Entity};
use crate::entity::users;

/// Stores a new refresh token.
pub async fn insert(db: &impl ConnectionTrait, row: refresh_tokens::Model) -> Result<(), DbErr> {
    Entity::insert(row.into_active_model())
        .exec_without_returning(db)
        .await
        .map(|_| ())
}

/// One token by id.
pub async fn find(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<refresh_tokens::Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

/// Rotates the live token `id` into `child` if `token_hash` and `client_id`
/// match and its family's login was after `born_after` (the session's
/// maximum lifetime), returning the token as it was before; `None` when
/// there is no such live token (unknown, forged, another client's, expired,
/// revoked, past its session's lifetime, or already rotated). One
/// conditional `UPDATE … RETURNING`: of concurrent rotations of one token
/// exactly one gets the row.
pub async fn rotate(
    db: &impl ConnectionTrait,
    id: Uuid,
    token_hash: &str,
    client_id: &str,
    child: Uuid,
    now: DateTime<Utc>,
    born_after: DateTime<Utc>,
) -> Result<Option<refresh_tokens::Model>, DbErr> {
    let mut update = Entity::update_many()
        .col_expr(Column::RotatedAt, Expr::value(now))
        .col_expr(Column::ReplacedBy, Expr::value(child))
        .filter(Column::Id.eq(id))
        .filter(Column::TokenHash.eq(token_hash))
        .filter(Column::ClientId.eq(client_id))
        .filter(Column::RotatedAt.is_null())
        .filter(Column::RevokedAt.is_null())
        .filter(Column::ExpiresAt.gt(now))
        .filter(Column::AuthTime.gt(born_after))
        .into_query();
    update.returning_all();
    let stmt = db.get_database_backend().build(&update);
    Entity::find().from_raw_sql(stmt).one(db).await
}

/// Most statements a revocation repeats before giving up (see
/// [`revoke_until_none_left`]); a rotation needs a round trip to the client
/// per step, a repeat none, so two or three suffice in practice.
const MAX_REVOKE_PASSES: usize = 64;

/// Runs the revoking `UPDATE` again until it finds nothing left to revoke.
///
/// Under READ COMMITTED (PostgreSQL's default) one `UPDATE` cannot outrun a
/// rotation in flight: the rotation holds the parent's row lock and inserts
/// a child that the `UPDATE`'s snapshot never sees, so after the lock is
/// released the parent is revoked and the child lives. A later statement has
/// a later snapshot and sees that child. When a statement finds no live row,
/// no rotation was in flight either (its parent would have been a live row
/// to wait for), and every later rotation finds its parent revoked: so when
/// this returns, the revocation cannot be outrun. On SQLite, with one writer
/// at a time, the first pass is the last.
async fn revoke_until_none_left<F, Fut>(mut pass: F) -> Result<u64, DbErr>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, DbErr>>,
{
    let mut total = 0;
    for _ in 0..MAX_REVOKE_PASSES {
        let n = pass().await?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
    Err(DbErr::Custom(format!(
        "revocation still finding live tokens after {MAX_REVOKE_PASSES} passes"
    )))
}

/// Revokes every live token of a family, including children of rotations
/// racing it ([`revoke_until_none_left`]).
pub async fn revoke_family(
    db: &impl ConnectionTrait,
    family: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    revoke_until_none_left(|| async {
        Entity::update_many()
            .col_expr(Column::RevokedAt, Expr::value(now))
            .filter(Column::FamilyId.eq(family))
            .filter(Column::RevokedAt.is_null())
            .exec(db)
            .await
            .map(|r| r.rows_affected)
    })
    .await
}

/// Revokes every live token of a user, except those of `keep_family`,
/// including children of rotations racing it.
pub async fn revoke_user(
    db: &impl ConnectionTrait,
    user: Uuid,
    keep_family: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    revoke_until_none_left(|| async {
        let mut q = Entity::update_many()
            .col_expr(Column::RevokedAt, Expr::value(now))
            .filter(Column::UserId.eq(user))
            .filter(Column::RevokedAt.is_null());
        if let Some(f) = keep_family {
            q = q.filter(Column::FamilyId.ne(f));
        }
        q.exec(db).await.map(|r| r.rows_affected)
    })
    .await
}

/// Revokes every live token of the families started from `login_session`.
pub async fn revoke_login_session(
    db: &impl ConnectionTrait,
    login_session: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    revoke_until_none_left(|| async {
        Entity::update_many()
            .col_expr(Column::RevokedAt, Expr::value(now))
            .filter(Column::LoginSessionId.eq(login_session))
            .filter(Column::RevokedAt.is_null())
            .exec(db)
            .await
            .map(|r| r.rows_affected)
    })
    .await
}

/// Ends every live browser login session of `user`, except the one the
/// refresh family `keep_family` started from (a password change keeps the
/// caller's own session; a reset keeps none).
pub async fn end_login_sessions(
    db: &impl ConnectionTrait,
    user: Uuid,
    keep_family: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    use crate::entity::login_sessions;
    let keep = match keep_family {
        Some(f) => Entity::find_by_id(f)
            .one(db)
            .await?
            .and_then(|r| r.login_session_id),
        None => None,
    };
    let mut q = login_sessions::Entity::update_many()
        .col_expr(login_sessions::Column::EndedAt, Expr::value(now))
        .filter(login_sessions::Column::UserId.eq(user))
        .filter(login_sessions::Column::EndedAt.is_null());
    if let Some(k) = keep {
        q = q.filter(login_sessions::Column::Id.ne(k));
    }
    q.exec(db).await.map(|r| r.rows_affected)
}

/// Deletes tokens that expired before `before`.
pub async fn delete_expired(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Entity::delete_many()
        .filter(Column::ExpiresAt.lt(before))
        .exec(db)
        .await
        .map(|r| r.rows_affected)
}

/// What a rotation's child gets besides what it inherits from its parent.
#[derive(Debug, Clone, Copy)]
pub struct NewChild<'a> {
    /// Its id.
    pub id: Uuid,
    /// SHA-256 of its value, hex.
    pub token_hash: &'a str,
    /// Its expiry.
    pub expires_at: DateTime<Utc>,
}

/// A rotation of the live token `id` into `child` at `now`, if `token_hash`
/// and `client_id` match and its family was logged into after `born_after`.
#[derive(Debug, Clone, Copy)]
pub struct Rotation<'a> {
    /// The presented token's id.
    pub id: Uuid,
    /// SHA-256 of the presented value, hex.
    pub token_hash: &'a str,
    /// The client presenting it.
    pub client_id: &'a str,
    /// What the child gets.
    pub child: NewChild<'a>,
    /// The rotation's instant.
    pub now: DateTime<Utc>,
    /// A login (`auth_time`) at or before this is past the session's
    /// maximum lifetime: the token does not rotate.
    pub born_after: DateTime<Utc>,
}

/// [`rotate`], the child's insert and the user's read in one round trip:
/// `None` as for [`rotate`]. Concurrent rotations of one token make exactly
/// one child, and the rotation (parent marked, child inserted) is atomic;
/// on SQLite the read after it is a second statement, so a failure there
/// leaves the token rotated and the client retrying within the grace window
/// gets the child (as when an answer is lost on the way).
///
/// PostgreSQL: one statement, the `UPDATE … RETURNING` and the `INSERT` in
/// data-modifying CTEs; the row lock makes a second `UPDATE` wait and then
/// find the token rotated. SQLite, on the caller's thread ([`Inline`]): the
/// child's `INSERT … SELECT` from its live parent (whose trigger marks the
/// parent rotated in the same statement; SQLite runs one writer at a time,
/// so a second insert finds the parent rotated), then the parent and the
/// user, read only if this child is the one that replaced it. Run twice (a
/// busy database), the second insert finds the parent rotated and the read
/// still finds this child.
pub async fn rotate_with_user(
    db: &impl ConnectionTrait,
    inline: &Inline,
    rotation: Rotation<'_>,
) -> Result<Option<(refresh_tokens::Model, users::Model)>, DbErr> {
    if inline.is_on() {
        return rotate_with_user_inline(inline, rotation).await;
    }
    fn columns() -> String {
        let aliased = |table: &str, prefix: &str, cols: Vec<String>| {
            cols.iter()
                .map(|c| format!("{table}.{c} AS \"{prefix}{c}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let token_cols = Column::iter().map(|c| c.as_str().to_owned()).collect();
        let user_cols = users::Column::iter()
            .map(|c| c.as_str().to_owned())
            .collect();
        format!(
            "{}, {}",
            aliased("parent", "A_", token_cols),
            aliased("users", "B_", user_cols)
        )
    }
    static POSTGRES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "WITH parent AS ( \
               UPDATE refresh_tokens SET rotated_at = $1, replaced_by = $2 \
               WHERE id = $3 AND token_hash = $4 AND client_id = $5 \
                 AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > $1 \
                 AND auth_time > $8 \
               RETURNING * \
             ), child AS ( \
               INSERT INTO refresh_tokens \
                 (id, token_hash, family_id, parent_id, user_id, client_id, scope, auth_time, created_at, expires_at, login_session_id) \
               SELECT $2, $6, family_id, id, user_id, client_id, scope, auth_time, $1, $7, login_session_id FROM parent \
               RETURNING id \
             ) \
             SELECT {} FROM parent JOIN users ON users.id = parent.user_id",
            columns()
        )
    });
    let stmt = Statement::from_sql_and_values(
        DbBackend::Postgres,
        POSTGRES.as_str(),
        [
            rotation.now.into(),
            rotation.child.id.into(),
            rotation.id.into(),
            rotation.token_hash.into(),
            rotation.client_id.into(),
            rotation.child.token_hash.into(),
            rotation.child.expires_at.into(),
            rotation.born_after.into(),
        ],
    );
    let Some(row) = db.query_one(stmt).await? else {
        return Ok(None);
    };
    Ok(Some((
        refresh_tokens::Model::from_query_result(&row, "A_")?,
        users::Model::from_query_result(&row, "B_")?,
    )))
}

/// [`rotate_with_user`] on SQLite.
async fn rotate_with_user_inline(
    inline: &Inline,
    rotation: Rotation<'_>,
) -> Result<Option<(refresh_tokens::Model, users::Model)>, DbErr> {
    let Rotation {
        id,
        token_hash,
        client_id,
        child,
        now,
        born_after,
    } = rotation;
    use rusqlite::OptionalExtension as _;

    const INSERT: &str = "INSERT INTO refresh_tokens \
           (id, token_hash, family_id, parent_id, user_id, client_id, scope, auth_time, created_at, expires_at, login_session_id) \
         SELECT ?2, ?6, family_id, id, user_id, client_id, scope, auth_time, ?1, ?7, login_session_id \
         FROM refresh_tokens \
         WHERE id = ?3 AND token_hash = ?4 AND client_id = ?5 \
           AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > ?1 \
           AND auth_time > ?8";
    static READ: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let cols = |table: &str, names: &[&str]| {
            names
                .iter()
                .map(|c| format!("{table}.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "SELECT {}, {} FROM refresh_tokens AS parent JOIN users ON users.id = parent.user_id \
             WHERE parent.id = ?1 AND parent.replaced_by = ?2",
            cols("parent", &refresh_tokens::SQLITE_COLUMNS),
            cols("users", &users::SQLITE_COLUMNS),
        )
    });
    let now = inline::time_value(now);
    let born_after = inline::time_value(born_after);
    let expires_at = inline::time_value(child.expires_at);
    let (token_hash, client_id) = (token_hash.to_owned(), client_id.to_owned());
    let child_hash = child.token_hash.to_owned();
    let child_id = child.id;
    inline
        .write(move |conn| {
            conn.prepare_cached(INSERT)?.execute(rusqlite::params![
                now,
                child_id.as_bytes(),
                id.as_bytes(),
                token_hash,
                client_id,
                child_hash,
                expires_at,
                born_after,
            ])?;
            conn.prepare_cached(&READ)?
                .query_row([id.as_bytes(), child_id.as_bytes()], |row| {
                    let parent = refresh_tokens::Model::from_sqlite_row(row, 0)?;
                    let user =
                        users::Model::from_sqlite_row(row, refresh_tokens::SQLITE_COLUMNS.len())?;
                    Ok((parent, user))
                })
                .optional()
        })
        .await
}
