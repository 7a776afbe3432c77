//! The numbers cached pages are kept under (see [`crate::views`]): each
//! user's version, moved at commit by triggers on everything their pages
//! show, and the instance's (rarity thresholds, cache epoch, shared
//! version). The session check reads them from the primary; a replica is
//! asked for them before a page is worked out on it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::{instance_settings, user_versions};

/// The numbers a user's cached pages are valid under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Versions {
    /// Moves with every committed change to the user's own data.
    pub user: i64,
    /// Moves with every committed change to what many users see together
    /// (shared goals, totals, profile settings).
    pub shared: i64,
    /// When the rarity thresholds last changed (microseconds).
    pub tiers_at: i64,
    /// Moved by an admin clearing the cached pages.
    pub epoch: i64,
}

impl Versions {
    /// Whether data read under these versions includes everything `wanted`
    /// names: the user's own writes, the rarity thresholds and the admin's
    /// epoch. The shared version is a sequence, whose value a replica may
    /// show ahead of its data, so it is not compared: other users' changes
    /// show once the replica replays them.
    pub fn covers(&self, wanted: &Versions) -> bool {
        self.user >= wanted.user && self.tiers_at >= wanted.tiers_at && self.epoch >= wanted.epoch
    }
}

#[diesel::declare_sql_function]
extern "SQL" {
    /// The number every change to what many users see together moves
    /// (a sequence; see the `user_versions` migration).
    fn shared_version() -> diesel::sql_types::BigInt;
}

/// The instance's numbers every cached page is kept under: when the rarity
/// thresholds changed, the cache epoch and the shared version.
#[diesel::dsl::auto_type]
pub fn instance_versions() -> _ {
    (
        instance_settings::table.select(instance_settings::updated_at).single_value(),
        instance_settings::table.select(instance_settings::cache_epoch).single_value(),
        shared_version(),
    )
}

/// What [`instance_versions`] reads.
pub type InstanceVersions = (Option<DateTime<Utc>>, Option<i64>, i64);

/// The versions from a user's version (none yet: 0) and the instance's.
pub fn versions(user: Option<i64>, (tiers_at, epoch, shared): InstanceVersions) -> Versions {
    Versions {
        user: user.unwrap_or(0),
        shared,
        tiers_at: tiers_at.map_or(0, |t| t.timestamp_micros()),
        epoch: epoch.unwrap_or(0),
    }
}

/// What a visitor's cached pages are kept under: the instance's numbers,
/// with no user of their own.
pub fn visitor_versions(conn: &mut PgConnection) -> QueryResult<Versions> {
    Ok(versions(None, diesel::select(instance_versions()).get_result(conn)?))
}

/// The versions as this connection's snapshot has them, for `user_id` (0
/// for a visitor): a replica compares them with those the session check
/// read from the primary before a page is worked out on it.
pub fn versions_of(conn: &mut PgConnection, user_id: i64) -> QueryResult<Versions> {
    let user = user_versions::table.find(user_id).select(user_versions::version).single_value();
    let (user, instance) = diesel::select((user, instance_versions())).get_result(conn)?;
    Ok(versions(user, instance))
}

/// Tables a read kept under [`Versions`] may read although no version
/// trigger watches them, each with the reason its changes still show.
/// Every other table such a read touches must have a version trigger
/// (`note_versions` or `note_shared_change`); [`checked_read`] enforces it
/// by table, not by column: `users` counts as watched through its trigger
/// on names and status, so a kept page must show no other column of it.
pub const UNWATCHED_READS: &[(&str, &str)] = &[
    ("games", "the catalogue: names and counts every user shares, shown anew once a page is older than its TTL"),
    ("game_achievements", "the catalogue, as for games"),
    ("instance_settings", "its rarity time and cache epoch are part of every key"),
    (
        "images",
        "rows are never updated: a goal shows another image only by pointing at another row, a change its own \
         (watched) table makes",
    ),
    ("user_versions", "is the version itself"),
];

/// One row of [`LOCKED_TABLES`] or [`WATCHED_TABLES`].
#[derive(QueryableByName)]
struct TableName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    relname: String,
}

fn names(rows: Vec<TableName>) -> std::collections::HashSet<String> {
    rows.into_iter().map(|r| r.relname).collect()
}

/// The tables this transaction holds a lock on: every table (or index of
/// one) a statement named takes one, kept to the transaction's end,
/// whether or not the data made the plan scan it.
const LOCKED_TABLES: &str = "SELECT DISTINCT c.relname::text AS relname
     FROM pg_locks l
     LEFT JOIN pg_index i ON i.indexrelid = l.relation
     JOIN pg_class c ON c.oid = coalesce(i.indrelid, l.relation)
     WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation'
       AND c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'm')";

/// The tables whose changes move a version: those with an enabled trigger
/// calling `note_versions` or `note_shared_change`.
const WATCHED_TABLES: &str = "SELECT DISTINCT c.relname::text AS relname
     FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
     WHERE t.tgenabled <> 'D' AND p.proname IN ('note_versions', 'note_shared_change')";

/// Runs `read` (data to be kept under versions) and refuses its result
/// when it named a table whose changes move no version: such a page would
/// show stale data until its TTL ran out, with nothing to say so. Debug
/// builds (the tests) run every versioned read through this; a release
/// build skips the two extra queries.
pub fn checked_read<T, E>(conn: &mut PgConnection, read: impl FnOnce(&mut PgConnection) -> Result<T, E>) -> Result<T, E>
where
    E: From<diesel::result::Error> + From<UnwatchedRead>,
{
    conn.transaction(|conn| {
        // Locks, not scan counts: a join whose other side is empty today
        // scans nothing, but its table is named, and locked, all the same.
        let before = names(diesel::sql_query(LOCKED_TABLES).load(conn)?);
        let out = read(conn)?;
        let after = names(diesel::sql_query(LOCKED_TABLES).load(conn)?);
        let watched = names(diesel::sql_query(WATCHED_TABLES).load(conn)?);
        let mut unwatched: Vec<String> = after
            .into_iter()
            .filter(|t| !before.contains(t))
            .filter(|t| !watched.contains(t) && !UNWATCHED_READS.iter().any(|(u, _)| u == t))
            .collect();
        if unwatched.is_empty() {
            return Ok(out);
        }
        unwatched.sort();
        Err(UnwatchedRead(unwatched).into())
    })
}

/// A versioned read touched tables no version trigger watches.
#[derive(Debug, thiserror::Error)]
#[error(
    "a page kept under versions read {0:?}, whose changes move no version: add a version trigger \
     (see the user_versions migrations) or list the table in versions::UNWATCHED_READS with the reason"
)]
pub struct UnwatchedRead(pub Vec<String>);

impl From<UnwatchedRead> for crate::error::AppError {
    fn from(e: UnwatchedRead) -> Self {
        crate::error::AppError::Internal(e.into())
    }
}
