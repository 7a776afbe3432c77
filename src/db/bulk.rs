//! Loading many rows at once the way PostgreSQL's manual advises
//! ("Populating a Database"): without the tables' indexes and foreign keys,
//! which are built again at the end in one sorted pass each. Row by row, a
//! foreign key costs a look-up and a row lock per row, and an index a
//! random insertion: ten million unlocks took 312 s that way, 32 s this way.
//!
//! What is taken off is read from the catalog, not written here, so the
//! statements that put it back are the schema's, whatever later migrations
//! make of it (not carried: tablespaces, comments, CLUSTER marks and
//! per-index statistics targets, none of which the schema uses).
//!
//! It all happens inside the caller's transaction: a failure or a kill
//! rolls the tables back with their indexes, and no one else ever sees them
//! without (the tables are locked, with those their foreign keys point at,
//! which is the price: everyone waits until the transaction ends).

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Text};

/// The indexes and constraints taken off tables for a bulk load; [`put_back`]
/// builds them again.
///
/// [`put_back`]: Stripped::put_back
#[must_use = "the tables stay without their indexes until put_back"]
#[derive(Debug)]
pub struct Stripped {
    /// `CREATE INDEX …` and `ALTER TABLE … ADD CONSTRAINT …`, in the order
    /// they must run (keys before the foreign keys that need them).
    restore: Vec<String>,
}

#[derive(QueryableByName)]
struct Item {
    #[diesel(sql_type = Text)]
    drop_sql: String,
    #[diesel(sql_type = Text)]
    create_sql: String,
    #[diesel(sql_type = Integer)]
    create_rank: i32,
}

#[derive(QueryableByName)]
struct Got {
    #[diesel(sql_type = Bool)]
    got: bool,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

#[derive(QueryableByName)]
struct Estimate {
    #[diesel(sql_type = BigInt)]
    rows: i64,
}

/// The planner's estimate of a table's rows (0 for a table never analysed).
pub fn estimated_rows(conn: &mut PgConnection, table: &str) -> QueryResult<i64> {
    let e: Estimate =
        diesel::sql_query("SELECT greatest(reltuples, 0)::int8 AS rows FROM pg_class WHERE oid = $1::text::regclass")
            .bind::<Text, _>(table)
            .get_result(conn)?;
    Ok(e.rows)
}

/// Takes the indexes and constraints (primary and unique keys, foreign keys
/// from and to them) off `tables`, after locking them, within the caller's
/// transaction. Dropping a foreign key locks the table at its other end
/// too (`users`, say), so those are locked with them, until the caller's
/// commit: the whole site waits meanwhile, which is why this is for an
/// instance's first import. `None`, with nothing changed, when the tables
/// could not all be locked within `wait` (someone is using them: the
/// caller loads row by row instead of queueing everyone behind its lock).
pub fn strip(conn: &mut PgConnection, tables: &[&str], wait: Duration) -> QueryResult<Option<Stripped>> {
    let names: Vec<String> = tables.iter().map(|t| (*t).to_owned()).collect();
    // Names come from the caller's constant list, never from input.
    debug_assert!(tables.iter().all(|t| t.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
    // Every table the drops lock, in one order (quoted by regclass).
    let others: Vec<Name> = diesel::sql_query(
        "SELECT DISTINCT r::regclass::text AS name FROM (
             SELECT c.confrelid AS r FROM pg_constraint c
             WHERE c.contype = 'f' AND c.conrelid = ANY($1::text[]::regclass[])
             UNION SELECT c.conrelid FROM pg_constraint c
             WHERE c.contype = 'f' AND c.confrelid = ANY($1::text[]::regclass[])
         ) t WHERE r <> ALL($1::text[]::regclass[]::oid[]) ORDER BY 1",
    )
    .bind::<Array<Text>, _>(&names)
    .load(conn)?;
    let list: Vec<String> = names.iter().cloned().chain(others.into_iter().map(|n| n.name)).collect();
    // A lock timeout raises an error, which would abort the transaction:
    // the inner block catches it (or a deadlock) in a subtransaction, and
    // the caller's own lock_timeout comes back either way.
    diesel::sql_query(format!(
        "DO $$
         DECLARE previous TEXT := current_setting('lock_timeout');
         BEGIN
             PERFORM set_config('questline.bulk_locked', 'no', true);
             BEGIN
                 PERFORM set_config('lock_timeout', '{ms}ms', true);
                 LOCK TABLE {list} IN ACCESS EXCLUSIVE MODE;
                 PERFORM set_config('questline.bulk_locked', 'yes', true);
             EXCEPTION WHEN lock_not_available OR deadlock_detected THEN
                 NULL;
             END;
             PERFORM set_config('lock_timeout', previous, true);
         END $$",
        ms = wait.as_millis().max(1),
        list = list.join(", "),
    ))
    .execute(conn)?;
    let got: Got =
        diesel::sql_query("SELECT current_setting('questline.bulk_locked') = 'yes' AS got").get_result(conn)?;
    if !got.got {
        return Ok(None);
    }
    let mut items: Vec<Item> = diesel::sql_query(
        "SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname) AS drop_sql,
                format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
                       pg_get_constraintdef(c.oid)) AS create_sql,
                CASE WHEN c.contype = 'f' THEN 2 ELSE 0 END AS create_rank
         FROM pg_constraint c
         WHERE (c.conrelid = ANY($1::text[]::regclass[]) AND c.contype IN ('p', 'u', 'x', 'f'))
            OR (c.confrelid = ANY($1::text[]::regclass[]) AND c.contype = 'f')
         UNION ALL
         SELECT format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid), 1
         FROM pg_index i
         WHERE i.indrelid = ANY($1::text[]::regclass[])
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                           WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)",
    )
    .bind::<Array<Text>, _>(&names)
    .load(conn)?;
    // Foreign keys go first (they need the keys), keys last.
    items.sort_by_key(|i| std::cmp::Reverse(i.create_rank));
    for item in &items {
        diesel::sql_query(&item.drop_sql).execute(conn)?;
    }
    items.reverse();
    Ok(Some(Stripped { restore: items.into_iter().map(|i| i.create_sql).collect() }))
}

impl Stripped {
    /// Builds every index and constraint again (the foreign keys are
    /// checked in one pass each), with `memory_mib` MiB for each sort.
    pub fn put_back(self, conn: &mut PgConnection, memory_mib: u32) -> QueryResult<()> {
        let previous: Setting =
            diesel::sql_query("SELECT current_setting('maintenance_work_mem') AS value").get_result(conn)?;
        diesel::sql_query("SELECT set_config('maintenance_work_mem', $1, true)")
            .bind::<Text, _>(format!("{memory_mib}MB"))
            .execute(conn)?;
        for sql in &self.restore {
            diesel::sql_query(sql).execute(conn)?;
        }
        diesel::sql_query("SELECT set_config('maintenance_work_mem', $1, true)")
            .bind::<Text, _>(previous.value)
            .execute(conn)?;
        Ok(())
    }
}
