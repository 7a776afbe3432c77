//! Per-user totals (`user_scores`): points, unlocks, perfect games and
//! games, kept beside the library so leaderboards and profiles never sum a
//! whole library on a page view.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt};

use super::library::{LibraryTotals, PointsDelta};
use crate::schema::user_scores;

/// One user's totals.
#[derive(Debug, Clone, Default, Queryable, Selectable, get_size2::GetSize)]
#[diesel(table_name = user_scores, check_for_backend(diesel::pg::Pg))]
pub struct Score {
    pub user_id: i64,
    pub points: i64,
    pub unlocked: i64,
    pub perfect: i64,
    pub games: i64,
    pub computed_at: DateTime<Utc>,
}

/// Locks the totals of these users (and of every owner of `games`), in
/// user order, until the transaction ends. Whoever works points or totals
/// out again takes this first, so two of them never read a library the
/// other is changing (a total lost, or a delta added twice), and never
/// deadlock on each other.
pub fn lock(conn: &mut PgConnection, users: &[i64], games: &[i64]) -> QueryResult<()> {
    diesel::sql_query(
        "SELECT user_id FROM user_scores
         WHERE user_id = ANY($1)
            OR user_id IN (SELECT le.user_id FROM library_entries le WHERE le.appid = ANY($2))
         ORDER BY user_id FOR UPDATE",
    )
    .bind::<Array<BigInt>, _>(users)
    .bind::<Array<BigInt>, _>(games)
    .execute(conn)
    .map(|_| ())
}

/// Stores freshly summed totals, replacing what was there.
pub fn store(conn: &mut PgConnection, totals: &[LibraryTotals]) -> QueryResult<usize> {
    if totals.is_empty() {
        return Ok(0);
    }
    let col = |f: fn(&LibraryTotals) -> i64| totals.iter().map(f).collect::<Vec<i64>>();
    diesel::sql_query(
        "INSERT INTO user_scores (user_id, points, unlocked, perfect, games, computed_at)
         SELECT * , now() FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[])
         ON CONFLICT (user_id) DO UPDATE SET points = excluded.points, unlocked = excluded.unlocked,
             perfect = excluded.perfect, games = excluded.games, computed_at = excluded.computed_at",
    )
    .bind::<Array<BigInt>, _>(col(|t| t.user_id))
    .bind::<Array<BigInt>, _>(col(|t| t.points))
    .bind::<Array<BigInt>, _>(col(|t| t.unlocked))
    .bind::<Array<BigInt>, _>(col(|t| t.perfect))
    .bind::<Array<BigInt>, _>(col(|t| t.games))
    .execute(conn)
}

/// Adds entry-by-entry point changes to the users' totals, one statement
/// for all of them.
pub fn add_points(conn: &mut PgConnection, deltas: &[PointsDelta]) -> QueryResult<usize> {
    let mut per_user: BTreeMap<i64, i64> = BTreeMap::new();
    for d in deltas {
        *per_user.entry(d.user_id).or_default() += d.delta;
    }
    per_user.retain(|_, d| *d != 0);
    if per_user.is_empty() {
        return Ok(0);
    }
    let (users, sums): (Vec<i64>, Vec<i64>) = per_user.into_iter().unzip();
    diesel::sql_query(
        "UPDATE user_scores us SET points = us.points + d.delta, computed_at = now()
         FROM unnest($1::int8[], $2::int8[]) AS d(user_id, delta)
         WHERE us.user_id = d.user_id",
    )
    .bind::<Array<BigInt>, _>(users)
    .bind::<Array<BigInt>, _>(sums)
    .execute(conn)
}

/// A user's totals; zeros before the first sync or import.
pub fn of(conn: &mut PgConnection, user_id: i64) -> QueryResult<Score> {
    Ok(user_scores::table
        .find(user_id)
        .select(Score::as_select())
        .first(conn)
        .optional()?
        .unwrap_or(Score { user_id, ..Score::default() }))
}
