//! The run's undo log (`import_undo`): what it changed on rows that were
//! here before it, so a rollback puts them back exactly.
//!
//! Before a run writes, it keeps (and locks, until its commit) the image of
//! every row it may change for the accounts it touches: their totals,
//! library entries, goals and shared-goal progress; for the other owners of
//! games whose achievement count it changes, their totals and those games'
//! entries. It also keeps the counters of every shared goal. After its last
//! write it keeps the new images and drops the rows it left alone. Because
//! the rows stay locked from the first image to the commit, the difference
//! between the two images is the run's alone.
//!
//! A rollback restores a row's earlier image only where the row is still
//! exactly what the run left: a row changed since (a sync, an edit) is not
//! overwritten, and its owner's numbers are worked out again instead.
//! Shared goals' counters move back by what the run added, whatever else
//! moved them since; nothing else of a shared goal is touched.
//!
//! This is a log of row images, compared as JSON and written back through
//! the tables' own row types (`jsonb_populate_record`), the way a
//! database's own undo is: the one place that writes several domains'
//! rows, only ever to put back what they held. Values the other domains
//! own (counters, a goal's met mark) go back through their models.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};

/// A table the log follows for the accounts a run touches.
struct Tracked {
    table: &'static str,
    /// The columns of the row's key (all `int8`).
    key: &'static [&'static str],
    /// Its owner's user id, over the JSON image `r`.
    owner: &'static str,
    /// Which rows: `$1` the run, `$2` the accounts it brings rows for, `$3`
    /// the other owners of `$4`, the games whose count it changes.
    scope: &'static str,
    /// Rows the run inserts that nothing else marks as its own.
    inserted: Option<&'static str>,
}

/// In the order the rest of the app locks them (totals first, as
/// `score::lock` does), so a sync and an import never wait on each other
/// crosswise.
const TRACKED: [Tracked; 4] = [
    Tracked {
        table: "user_scores",
        key: &["user_id"],
        owner: "(r ->> 'user_id')::int8",
        scope: "(t.user_id = ANY($2) OR t.user_id = ANY($3))",
        // Totals of an account that had none (now() is the run's
        // transaction's start: no other transaction writes that instant).
        inserted: Some("t.computed_at = now()"),
    },
    Tracked {
        table: "library_entries",
        key: &["user_id", "appid"],
        owner: "(r ->> 'user_id')::int8",
        // The run's own entries carry its number and go with it.
        scope: "t.import_run_id IS DISTINCT FROM $1 AND (t.user_id = ANY($2) OR (t.user_id = ANY($3) AND t.appid = ANY($4)))",
        inserted: None,
    },
    Tracked {
        table: "custom_achievements",
        key: &["id"],
        owner: "(r ->> 'owner_id')::int8",
        scope: "t.import_run_id IS DISTINCT FROM $1 AND (t.owner_id = ANY($2) OR t.owner_id = ANY($3))",
        inserted: None,
    },
    Tracked {
        table: "community_takers",
        key: &["community_id", "user_id"],
        owner: "(r ->> 'user_id')::int8",
        scope: "(t.user_id = ANY($2) OR t.user_id = ANY($3))",
        // A shared goal a touched account met in this run.
        inserted: Some("t.taken_at = now()"),
    },
];

/// Rows recorded one by one as the run inserts them (no image before).
const INSERTED_ONLY: &str = "user_achievements";

/// The key columns of a logged table.
fn key_of(table: &str) -> &'static [&'static str] {
    match table {
        INSERTED_ONLY => &["user_id", "achievement_id"],
        "community_achievements" => &["id"],
        _ => TRACKED.iter().find(|t| t.table == table).map(|t| t.key).unwrap_or(&[]),
    }
}

/// The row's key as JSON, over alias `t`.
fn key_json(columns: &[&str]) -> String {
    let pairs: Vec<String> = columns.iter().map(|c| format!("'{c}', t.{c}")).collect();
    format!("jsonb_build_object({})", pairs.join(", "))
}

/// How a logged row (`u`) finds its table's row (`t`), by the table's own
/// indexed columns.
fn join_of(table: &str) -> String {
    let columns = key_of(table);
    if columns.is_empty() {
        return "FALSE".into();
    }
    columns.iter().map(|c| format!("t.{c} = (u.key ->> '{c}')::int8")).collect::<Vec<_>>().join(" AND ")
}

/// Images are compared as JSON text: fix what their rendering depends on,
/// so a rollback from another session (another time zone) still matches.
fn fix_rendering(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query("SET LOCAL TimeZone = 'UTC'").execute(conn)?;
    diesel::sql_query("SET LOCAL extra_float_digits = 1").execute(conn).map(|_| ())
}

/// The accounts a run touches: `accounts` (it brings rows for them) and
/// `owners` (they own `games`, whose achievement count it changes).
pub(crate) struct Touched<'a> {
    pub accounts: &'a [i64],
    pub owners: &'a [i64],
    pub games: &'a [i64],
}

impl<'a> Touched<'a> {
    /// Only these accounts (no games changed).
    pub fn accounts(accounts: &'a [i64]) -> Self {
        Touched { accounts, owners: &[], games: &[] }
    }
}

/// Keeps (and locks) the images of the rows run `run_id` may change, and
/// the counters of every shared goal.
pub(crate) fn keep_before(conn: &mut PgConnection, run_id: i64, touched: &Touched<'_>) -> QueryResult<()> {
    fix_rendering(conn)?;
    for t in &TRACKED {
        diesel::sql_query(format!(
            "INSERT INTO import_undo (run_id, tbl, key, before)
             SELECT $1, '{table}', {key}, to_jsonb(t)
             FROM (SELECT * FROM {table} t WHERE {scope} ORDER BY {order} FOR UPDATE) t
             ON CONFLICT DO NOTHING",
            table = t.table,
            key = key_json(t.key),
            scope = t.scope,
            order = t.key.iter().map(|c| format!("t.{c}")).collect::<Vec<_>>().join(", "),
        ))
        .bind::<BigInt, _>(run_id)
        .bind::<Array<BigInt>, _>(touched.accounts)
        .bind::<Array<BigInt>, _>(touched.owners)
        .bind::<Array<BigInt>, _>(touched.games)
        .execute(conn)?;
    }
    diesel::sql_query(
        "INSERT INTO import_undo (run_id, tbl, key, before)
         SELECT $1, 'community_achievements', jsonb_build_object('id', t.id),
                jsonb_build_object('tries_count', t.tries_count, 'completions_count', t.completions_count)
         FROM community_achievements t WHERE t.import_run_id IS DISTINCT FROM $1
         ON CONFLICT DO NOTHING",
    )
    .bind::<BigInt, _>(run_id)
    .execute(conn)
    .map(|_| ())
}

/// Records rows of `user_achievements` the run added to accounts that
/// existed before it (`keys`: `{"user_id", "achievement_id"}` objects).
pub(crate) fn record_inserted(conn: &mut PgConnection, run_id: i64, keys: &[String]) -> QueryResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    diesel::sql_query(
        "INSERT INTO import_undo (run_id, tbl, key, before)
         SELECT $1, $2, k::jsonb, NULL FROM unnest($3::text[]) AS k
         ON CONFLICT DO NOTHING",
    )
    .bind::<BigInt, _>(run_id)
    .bind::<Text, _>(INSERTED_ONLY)
    .bind::<Array<Text>, _>(keys)
    .execute(conn)
    .map(|_| ())
}

/// After the run's last write: keeps the new images, adds the rows it
/// inserted for the touched accounts, and drops what it left as it was.
pub(crate) fn keep_after(conn: &mut PgConnection, run_id: i64, touched: &Touched<'_>) -> QueryResult<()> {
    fix_rendering(conn)?;
    for table in TRACKED.iter().map(|t| t.table).chain([INSERTED_ONLY]) {
        diesel::sql_query(format!(
            "UPDATE import_undo u SET after = to_jsonb(t) FROM {table} t
             WHERE u.run_id = $1 AND u.tbl = '{table}' AND {join}",
            join = join_of(table)
        ))
        .bind::<BigInt, _>(run_id)
        .execute(conn)?;
    }
    diesel::sql_query(
        "UPDATE import_undo u
         SET after = jsonb_build_object('tries_count', t.tries_count, 'completions_count', t.completions_count)
         FROM community_achievements t
         WHERE u.run_id = $1 AND u.tbl = 'community_achievements' AND t.id = (u.key ->> 'id')::int8",
    )
    .bind::<BigInt, _>(run_id)
    .execute(conn)?;
    for t in TRACKED.iter() {
        let Some(inserted) = t.inserted else { continue };
        diesel::sql_query(format!(
            "INSERT INTO import_undo (run_id, tbl, key, before, after)
             SELECT $1, '{table}', {key}, NULL, to_jsonb(t) FROM {table} t WHERE {scope} AND {inserted}
             ON CONFLICT DO NOTHING",
            table = t.table,
            key = key_json(t.key),
            scope = t.scope,
        ))
        .bind::<BigInt, _>(run_id)
        .bind::<Array<BigInt>, _>(touched.accounts)
        .bind::<Array<BigInt>, _>(touched.owners)
        .bind::<Array<BigInt>, _>(touched.games)
        .execute(conn)?;
    }
    diesel::sql_query("DELETE FROM import_undo WHERE run_id = $1 AND before IS NOT DISTINCT FROM after")
        .bind::<BigInt, _>(run_id)
        .execute(conn)
        .map(|_| ())
}

/// Columns a restore writes (generated ones are worked out by the database).
fn columns(conn: &mut PgConnection, table: &str) -> QueryResult<Vec<String>> {
    #[derive(QueryableByName)]
    struct Column {
        #[diesel(sql_type = Text)]
        column_name: String,
    }
    Ok(diesel::sql_query(
        "SELECT column_name::text AS column_name FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1 AND is_generated = 'NEVER'
         ORDER BY ordinal_position",
    )
    .bind::<Text, _>(table)
    .load::<Column>(conn)?
    .into_iter()
    .map(|c| c.column_name)
    .collect())
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// What a rollback found: accounts whose rows changed since the run (to be
/// worked out again), and every account the run's log names.
pub(crate) struct Restored {
    pub drifted: Vec<i64>,
    pub logged: Vec<i64>,
}

/// Puts back what run `run_id` changed (after its own rows are gone).
pub(crate) fn restore(conn: &mut PgConnection, run_id: i64) -> QueryResult<Restored> {
    fix_rendering(conn)?;
    // Shared goals: the counters move back by what the run added.
    #[derive(QueryableByName)]
    struct Counters {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        tries: i32,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        completions: i32,
    }
    let moved: Vec<Counters> = diesel::sql_query(
        "SELECT (u.key ->> 'id')::int8 AS id,
                ((u.after ->> 'tries_count')::int - (u.before ->> 'tries_count')::int) AS tries,
                ((u.after ->> 'completions_count')::int - (u.before ->> 'completions_count')::int) AS completions
         FROM import_undo u
         WHERE u.run_id = $1 AND u.tbl = 'community_achievements' AND u.before IS NOT NULL AND u.after IS NOT NULL",
    )
    .bind::<BigInt, _>(run_id)
    .load(conn)?;
    let ids: Vec<i64> = moved.iter().map(|c| c.id).collect();
    let tries: Vec<i32> = moved.iter().map(|c| c.tries).collect();
    let completions: Vec<i32> = moved.iter().map(|c| c.completions).collect();
    crate::achievements::shared::model::take_back_counts(conn, &ids, &tries, &completions)?;

    let mut drifted: Vec<i64> = Vec::new();
    let mut logged: Vec<i64> = Vec::new();
    for (table, owner) in TRACKED.iter().map(|t| (t.table, t.owner)).chain([(INSERTED_ONLY, "(r ->> 'user_id')::int8")])
    {
        let join = join_of(table);
        // Nobody changes a logged row between its comparison and its restore.
        diesel::sql_query(format!(
            "SELECT 1 FROM {table} t JOIN import_undo u ON {join}
             WHERE u.run_id = $1 AND u.tbl = '{table}' ORDER BY u.key::text FOR UPDATE OF t"
        ))
        .bind::<BigInt, _>(run_id)
        .execute(conn)?;
        // Every owner the log names, and whether any of their rows changed
        // since the run: those are worked out again.
        #[derive(QueryableByName)]
        struct Owner {
            #[diesel(sql_type = BigInt)]
            id: i64,
            #[diesel(sql_type = diesel::sql_types::Bool)]
            changed: bool,
        }
        let owners: Vec<Owner> = diesel::sql_query(format!(
            "SELECT {owner} AS id,
                    bool_or(to_jsonb(t) IS DISTINCT FROM u.after
                            AND NOT (u.before IS NULL AND to_jsonb(t) IS NULL)) AS changed
             FROM import_undo u
             LEFT JOIN {table} t ON {join}
             CROSS JOIN LATERAL (SELECT coalesce(u.after, u.before)) AS x(r)
             WHERE u.run_id = $1 AND u.tbl = '{table}'
               AND EXISTS (SELECT 1 FROM users a WHERE a.id = {owner})
             GROUP BY 1"
        ))
        .bind::<BigInt, _>(run_id)
        .load(conn)?;
        for o in owners {
            if o.changed {
                drifted.push(o.id);
            }
            logged.push(o.id);
        }
        if table == "custom_achievements" {
            // A goal the run marked met, changed since: the mark goes (it
            // is stamped again if the goal still holds).
            let ids: Vec<Id> = diesel::sql_query(
                "SELECT t.id FROM custom_achievements t JOIN import_undo u ON t.id = (u.key ->> 'id')::int8
                 WHERE u.run_id = $1 AND u.tbl = 'custom_achievements'
                   AND to_jsonb(t) IS DISTINCT FROM u.after
                   AND u.before ->> 'met_at' IS NULL AND u.after ->> 'met_at' IS NOT NULL
                   AND to_jsonb(t.met_at) = u.after -> 'met_at'",
            )
            .bind::<BigInt, _>(run_id)
            .load(conn)?;
            let ids: Vec<i64> = ids.into_iter().map(|i| i.id).collect();
            crate::achievements::model::clear_met(conn, &ids)?;
        }
        // Rows the run added, still as it left them: gone.
        diesel::sql_query(format!(
            "DELETE FROM {table} t USING import_undo u
             WHERE u.run_id = $1 AND u.tbl = '{table}' AND {join}
               AND u.before IS NULL AND to_jsonb(t) = u.after"
        ))
        .bind::<BigInt, _>(run_id)
        .execute(conn)?;
        // Rows it changed, still as it left them: as they were.
        let cols = columns(conn, table)?;
        let set = cols.iter().map(|c| format!("\"{c}\" = r.\"{c}\"")).collect::<Vec<_>>().join(", ");
        diesel::sql_query(format!(
            "UPDATE {table} t SET {set}
             FROM import_undo u, jsonb_populate_record(NULL::{table}, u.before) AS r
             WHERE u.run_id = $1 AND u.tbl = '{table}' AND {join}
               AND u.before IS NOT NULL AND to_jsonb(t) = u.after"
        ))
        .bind::<BigInt, _>(run_id)
        .execute(conn)?;
    }
    diesel::sql_query("DELETE FROM import_undo WHERE run_id = $1").bind::<BigInt, _>(run_id).execute(conn)?;
    for list in [&mut drifted, &mut logged] {
        list.sort_unstable();
        list.dedup();
    }
    Ok(Restored { drifted, logged })
}
