//! The run's undo log (`import_undo`): what it changed on rows that were
//! here before it, so a rollback puts them back exactly.
//!
//! Before a run writes, it keeps the image of every row it may change for
//! the accounts it touches (their library entries, totals, goals and
//! shared-goal progress) and the counters of every shared goal; after its
//! last write it keeps their new images and drops the rows it left alone.
//! A rollback restores a row's earlier image only where the row is still
//! exactly what the run left: a row changed since (a sync, an edit) is not
//! overwritten, and its owner's numbers are worked out again instead.
//! Shared goals' counters move back by what the run added, whatever else
//! moved them since.
//!
//! This is a log of row images, written and read through the tables'
//! own row types (`to_jsonb`, `jsonb_populate_record`), the way a
//! database's own undo is: the one place that writes several domains'
//! tables, and only to put back what they held.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};

/// A table the log follows for the accounts a run touches.
struct Tracked {
    table: &'static str,
    /// The row's key, as JSON, over alias `t`.
    key: &'static str,
    /// Its owner's user id, over the JSON image `r`.
    owner: &'static str,
    /// Which rows: `$1` the run, `$2` the touched accounts.
    scope: &'static str,
    /// Rows the run inserts that nothing else marks as its own.
    inserted: Option<&'static str>,
}

const TRACKED: [Tracked; 4] = [
    Tracked {
        table: "library_entries",
        key: "jsonb_build_object('user_id', t.user_id, 'appid', t.appid)",
        owner: "(r ->> 'user_id')::int8",
        // The run's own entries carry its number and go with it.
        scope: "t.user_id = ANY($2) AND t.import_run_id IS DISTINCT FROM $1",
        inserted: None,
    },
    Tracked {
        table: "custom_achievements",
        key: "jsonb_build_object('id', t.id)",
        owner: "(r ->> 'owner_id')::int8",
        scope: "t.owner_id = ANY($2) AND t.import_run_id IS DISTINCT FROM $1",
        inserted: None,
    },
    Tracked {
        table: "community_takers",
        key: "jsonb_build_object('community_id', t.community_id, 'user_id', t.user_id)",
        owner: "(r ->> 'user_id')::int8",
        scope: "t.user_id = ANY($2)",
        // A goal a touched account met in this run (now() is the run's
        // transaction's start: no other transaction writes that instant).
        inserted: Some("t.taken_at = now()"),
    },
    Tracked {
        table: "user_scores",
        key: "jsonb_build_object('user_id', t.user_id)",
        owner: "(r ->> 'user_id')::int8",
        scope: "t.user_id = ANY($2)",
        inserted: Some("t.computed_at = now()"),
    },
];

/// Keeps the images of the rows run `run_id` may change for `accounts`
/// (which existed before it), and the counters of every shared goal.
pub(crate) fn keep_before(conn: &mut PgConnection, run_id: i64, accounts: &[i64]) -> QueryResult<()> {
    for t in &TRACKED {
        diesel::sql_query(format!(
            "INSERT INTO import_undo (run_id, tbl, key, before)
             SELECT $1, '{table}', {key}, to_jsonb(t) FROM {table} t WHERE {scope}
             ON CONFLICT DO NOTHING",
            table = t.table,
            key = t.key,
            scope = t.scope
        ))
        .bind::<BigInt, _>(run_id)
        .bind::<Array<BigInt>, _>(accounts)
        .execute(conn)?;
    }
    diesel::sql_query(
        "INSERT INTO import_undo (run_id, tbl, key, before)
         SELECT $1, 'community_achievements', jsonb_build_object('id', t.id), to_jsonb(t)
         FROM community_achievements t WHERE t.import_run_id IS DISTINCT FROM $1
         ON CONFLICT DO NOTHING",
    )
    .bind::<BigInt, _>(run_id)
    .execute(conn)
    .map(|_| ())
}

/// Records rows of `table` the run added to accounts that existed before
/// it, by key (`keys`: one JSON object per row, as [`Tracked::key`]).
pub(crate) fn record_inserted(
    conn: &mut PgConnection,
    run_id: i64,
    table: &'static str,
    keys: &[String],
) -> QueryResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    diesel::sql_query(
        "INSERT INTO import_undo (run_id, tbl, key, before)
         SELECT $1, $2, k::jsonb, NULL FROM unnest($3::text[]) AS k
         ON CONFLICT DO NOTHING",
    )
    .bind::<BigInt, _>(run_id)
    .bind::<Text, _>(table)
    .bind::<Array<Text>, _>(keys)
    .execute(conn)
    .map(|_| ())
}

/// How a logged row finds its table's row (`u` the log, `t` the table),
/// by the table's own indexed columns.
fn join_of(table: &str) -> &'static str {
    match table {
        "library_entries" => "t.user_id = (u.key ->> 'user_id')::int8 AND t.appid = (u.key ->> 'appid')::int8",
        "custom_achievements" | "community_achievements" => "t.id = (u.key ->> 'id')::int8",
        "community_takers" => {
            "t.community_id = (u.key ->> 'community_id')::int8 AND t.user_id = (u.key ->> 'user_id')::int8"
        }
        "user_scores" => "t.user_id = (u.key ->> 'user_id')::int8",
        "user_achievements" => {
            "t.user_id = (u.key ->> 'user_id')::int8 AND t.achievement_id = (u.key ->> 'achievement_id')::int8"
        }
        _ => "FALSE",
    }
}

const LOGGED: [&str; 6] = [
    "library_entries",
    "custom_achievements",
    "community_takers",
    "user_scores",
    "community_achievements",
    "user_achievements",
];

/// After the run's last write: keeps the new images, adds the rows it
/// inserted for `accounts`, and drops what it left as it was.
pub(crate) fn keep_after(conn: &mut PgConnection, run_id: i64, accounts: &[i64]) -> QueryResult<()> {
    for table in LOGGED {
        diesel::sql_query(format!(
            "UPDATE import_undo u SET after = to_jsonb(t) FROM {table} t
             WHERE u.run_id = $1 AND u.tbl = '{table}' AND {join}",
            join = join_of(table)
        ))
        .bind::<BigInt, _>(run_id)
        .execute(conn)?;
    }
    for t in TRACKED.iter() {
        let Some(inserted) = t.inserted else { continue };
        diesel::sql_query(format!(
            "INSERT INTO import_undo (run_id, tbl, key, before, after)
             SELECT $1, '{table}', {key}, NULL, to_jsonb(t) FROM {table} t WHERE {scope} AND {inserted}
             ON CONFLICT DO NOTHING",
            table = t.table,
            key = t.key,
            scope = t.scope,
        ))
        .bind::<BigInt, _>(run_id)
        .bind::<Array<BigInt>, _>(accounts)
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

/// Puts back what run `run_id` changed (after its own rows are gone) and
/// returns the accounts whose rows changed since, to be worked out again.
pub(crate) fn restore(conn: &mut PgConnection, run_id: i64) -> QueryResult<Vec<i64>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let mut drifted: Vec<i64> = Vec::new();
    // Shared goals: the counters move back by what the run added; a goal
    // nothing else touched since gets its whole row back.
    diesel::sql_query(
        "UPDATE community_achievements t SET
             tries_count = GREATEST(t.tries_count - ((u.after ->> 'tries_count')::int - (u.before ->> 'tries_count')::int), 0),
             completions_count = GREATEST(t.completions_count
                 - ((u.after ->> 'completions_count')::int - (u.before ->> 'completions_count')::int), 0)
         FROM import_undo u
         WHERE u.run_id = $1 AND u.tbl = 'community_achievements' AND t.id = (u.key ->> 'id')::int8
           AND u.before IS NOT NULL AND u.after IS NOT NULL
           AND to_jsonb(t) IS DISTINCT FROM u.after",
    )
    .bind::<BigInt, _>(run_id)
    .execute(conn)?;
    for table in LOGGED {
        let join = join_of(table);
        // Rows changed since: their owners are worked out again. A goal the
        // run marked met loses the mark (it is stamped again if it holds).
        if table != "community_achievements" {
            let owner = TRACKED.iter().find(|t| t.table == table).map(|t| t.owner).unwrap_or("(r ->> 'user_id')::int8");
            let ids: Vec<Id> = diesel::sql_query(format!(
                "SELECT DISTINCT {owner} AS id
                 FROM import_undo u
                 LEFT JOIN {table} t ON {join}
                 CROSS JOIN LATERAL (SELECT coalesce(u.after, u.before)) AS x(r)
                 WHERE u.run_id = $1 AND u.tbl = '{table}'
                   AND to_jsonb(t) IS DISTINCT FROM u.after
                   AND NOT (u.before IS NULL AND to_jsonb(t) IS NULL)
                   AND {owner} IS NOT NULL"
            ))
            .bind::<BigInt, _>(run_id)
            .load(conn)?;
            drifted.extend(ids.into_iter().map(|i| i.id));
        }
        if table == "custom_achievements" {
            diesel::sql_query(
                "UPDATE custom_achievements t SET met_at = NULL
                 FROM import_undo u
                 WHERE u.run_id = $1 AND u.tbl = 'custom_achievements' AND t.id = (u.key ->> 'id')::int8
                   AND to_jsonb(t) IS DISTINCT FROM u.after
                   AND u.before ->> 'met_at' IS NULL AND u.after ->> 'met_at' IS NOT NULL
                   AND t.met_at = (u.after ->> 'met_at')::timestamptz",
            )
            .bind::<BigInt, _>(run_id)
            .execute(conn)?;
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
    drifted.sort_unstable();
    drifted.dedup();
    Ok(drifted)
}
