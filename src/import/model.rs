//! The import's own tables: `import_runs` (one row per run, with its
//! report) and `import_game_counts` (what a run changed on games that
//! existed before it, so a rollback can put it back exactly).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};

use crate::schema::{import_files, import_runs};

#[derive(QueryableByName)]
struct RunId {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The advisory lock every import, dry run and rollback holds for its
/// whole transaction ("QLIMPORT").
const IMPORT_LOCK_KEY: i64 = 0x514c_494d_504f_5254;

/// Takes the import lock for the caller's transaction; false when another
/// import, dry run or rollback holds it (they would collide on the same
/// users, games and counts).
pub fn try_lock_imports(conn: &mut PgConnection) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        locked: bool,
    }
    diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
        .bind::<diesel::sql_types::BigInt, _>(IMPORT_LOCK_KEY)
        .get_result::<Locked>(conn)
        .map(|r| r.locked)
}

/// Starts a run and returns its number. A dry run is rolled back at the
/// end, and numbered without the sequence, so it uses up no run number.
pub fn begin(conn: &mut PgConnection, source: &str, dry_run: bool) -> QueryResult<i64> {
    if dry_run {
        return diesel::sql_query(
            "INSERT INTO import_runs (id, source)
             SELECT coalesce(max(id), 0) + 1, $1 FROM import_runs RETURNING id",
        )
        .bind::<Text, _>(source)
        .get_result::<RunId>(conn)
        .map(|r| r.id);
    }
    diesel::insert_into(import_runs::table)
        .values(import_runs::source.eq(source))
        .returning(import_runs::id)
        .get_result(conn)
}

/// Records the end of a run with its report.
pub fn finish(conn: &mut PgConnection, run_id: i64, report: serde_json::Value) -> QueryResult<()> {
    diesel::update(import_runs::table.find(run_id))
        .set((import_runs::finished_at.eq(Utc::now()), import_runs::report.eq(report)))
        .execute(conn)
        .map(|_| ())
}

/// Locks run `id` for its rollback: `None` when there is no such run, else
/// when it was rolled back already, if it was.
pub fn lock_for_rollback(conn: &mut PgConnection, id: i64) -> QueryResult<Option<Option<DateTime<Utc>>>> {
    import_runs::table.find(id).select(import_runs::rolled_back_at).for_update().first(conn).optional()
}

/// Records that run `id` was rolled back.
pub fn mark_rolled_back(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
    diesel::update(import_runs::table.find(id))
        .set(import_runs::rolled_back_at.eq(Utc::now()))
        .execute(conn)
        .map(|_| ())
}

/// Remembers the achievement counts (and timestamps) of the games that
/// existed before run `run_id` and whose count it is about to change.
pub fn record_game_counts(conn: &mut PgConnection, appids: &[i64], run_id: i64) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO import_game_counts (run_id, appid, achievement_count, updated_at)
         SELECT $2, g.appid, g.achievement_count, g.updated_at
         FROM games g
         JOIN (SELECT appid, count(*)::int AS n FROM game_achievements WHERE appid = ANY($1) GROUP BY appid) c
           ON c.appid = g.appid
         WHERE g.achievement_count <> c.n AND g.import_run_id IS DISTINCT FROM $2",
    )
    .bind::<Array<BigInt>, _>(appids)
    .bind::<BigInt, _>(run_id)
    .execute(conn)
}

/// An account a run brought over that its owner has used since.
#[derive(Debug, Clone, QueryableByName)]
pub struct UsedAccount {
    #[diesel(sql_type = Text)]
    pub username: String,
    /// What they did, in words ("signed in; 2 goal(s) of their own; audit: login, password_change").
    #[diesel(sql_type = Text)]
    pub what: String,
}

/// The accounts run `run_id` brought that were used since (signed in,
/// made goals of their own, or did anything the audit log records), the
/// first 50 by name, and how many there are.
pub fn used_accounts(conn: &mut PgConnection, run_id: i64) -> QueryResult<(Vec<UsedAccount>, i64)> {
    const USED: &str = "FROM users u
         WHERE u.import_run_id = $1
           AND (u.last_login_at IS NOT NULL
                OR EXISTS (SELECT 1 FROM custom_achievements c WHERE c.owner_id = u.id AND c.import_run_id IS NULL)
                OR EXISTS (SELECT 1 FROM audit_log a WHERE a.actor_id = u.id))";
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let total = diesel::sql_query(format!("SELECT count(*) AS n {USED}"))
        .bind::<BigInt, _>(run_id)
        .get_result::<Count>(conn)?
        .n;
    let rows = diesel::sql_query(format!(
        "SELECT u.username, concat_ws('; ',
                CASE WHEN u.last_login_at IS NOT NULL THEN 'signed in' END,
                (SELECT CASE WHEN count(*) > 0 THEN count(*) || ' goal(s) of their own' END
                 FROM custom_achievements c WHERE c.owner_id = u.id AND c.import_run_id IS NULL),
                (SELECT 'audit: ' || string_agg(DISTINCT a.action, ', ')
                 FROM audit_log a WHERE a.actor_id = u.id)) AS what
         {USED} ORDER BY u.username LIMIT 50"
    ))
    .bind::<BigInt, _>(run_id)
    .load(conn)?;
    Ok((rows, total))
}

/// Records (and commits, on `conn`'s own transaction) a file run `run_id`
/// is about to write.
pub fn record_file(conn: &mut PgConnection, run_id: i64, key: &str) -> QueryResult<()> {
    diesel::insert_into(import_files::table)
        .values((import_files::run_id.eq(run_id), import_files::storage_key.eq(key)))
        .on_conflict_do_nothing()
        .execute(conn)
        .map(|_| ())
}

/// Forgets the recorded files of every run (or of `run_id`) and returns
/// those that no image blob names.
pub fn forget_files(conn: &mut PgConnection, run_id: Option<i64>) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Key {
        #[diesel(sql_type = Text)]
        storage_key: String,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        named: bool,
    }
    let rows: Vec<Key> = diesel::sql_query(
        "DELETE FROM import_files f WHERE $1::int8 IS NULL OR f.run_id = $1
         RETURNING f.storage_key,
                   EXISTS (SELECT 1 FROM image_blobs b WHERE b.storage_key = f.storage_key OR b.thumb_key = f.storage_key) AS named",
    )
    .bind::<diesel::sql_types::Nullable<BigInt>, _>(run_id)
    .load(conn)?;
    Ok(rows.into_iter().filter(|k| !k.named).map(|k| k.storage_key).collect())
}

/// The games that existed before run `run_id` and whose achievement count
/// it changed.
pub fn changed_games(conn: &mut PgConnection, run_id: i64) -> QueryResult<Vec<i64>> {
    use crate::schema::import_game_counts;
    import_game_counts::table.filter(import_game_counts::run_id.eq(run_id)).select(import_game_counts::appid).load(conn)
}

/// Forgets run `run_id`'s record of the game counts it changed (after its
/// rollback put them back).
pub fn forget_game_counts(conn: &mut PgConnection, run_id: i64) -> QueryResult<()> {
    use crate::schema::import_game_counts;
    diesel::delete(import_game_counts::table.filter(import_game_counts::run_id.eq(run_id))).execute(conn).map(|_| ())
}
