//! Read-only views of a user's unlock history for the stats page: spread,
//! streaks, rarity, rarest unlocks and perfect games. Each is one query.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Double, Nullable, Text, Timestamptz};
use serde::{Deserialize, Serialize};

/// How many games sit in each completion band.
#[derive(Debug, Clone, Default, Serialize, Deserialize, QueryableByName)]
pub struct Spread {
    /// Games with achievements and none unlocked.
    #[diesel(sql_type = BigInt)]
    pub none: i64,
    #[diesel(sql_type = BigInt)]
    pub under_25: i64,
    #[diesel(sql_type = BigInt)]
    pub under_50: i64,
    #[diesel(sql_type = BigInt)]
    pub under_75: i64,
    #[diesel(sql_type = BigInt)]
    pub under_100: i64,
    #[diesel(sql_type = BigInt)]
    pub perfect: i64,
    /// Games without achievements, left out of the bands.
    #[diesel(sql_type = BigInt)]
    pub without: i64,
}

/// The user's games by completion band.
pub fn completion_spread(conn: &mut PgConnection, user_id: i64) -> QueryResult<Spread> {
    diesel::sql_query(
        "SELECT count(*) FILTER (WHERE c = 0)::int8 AS none,
                count(*) FILTER (WHERE c > 0 AND c < 0.25)::int8 AS under_25,
                count(*) FILTER (WHERE c >= 0.25 AND c < 0.5)::int8 AS under_50,
                count(*) FILTER (WHERE c >= 0.5 AND c < 0.75)::int8 AS under_75,
                count(*) FILTER (WHERE c >= 0.75 AND c < 1)::int8 AS under_100,
                count(*) FILTER (WHERE c >= 1)::int8 AS perfect,
                count(*) FILTER (WHERE c IS NULL)::int8 AS without
         FROM (SELECT le.unlocked_count::float8 / NULLIF(g.achievement_count, 0) AS c
               FROM library_entries le JOIN games g ON g.appid = le.appid WHERE le.user_id = $1) t",
    )
    .bind::<BigInt, _>(user_id)
    .get_result(conn)
}

/// Runs of consecutive days (UTC) with at least one unlock.
#[derive(Debug, Clone, Default, Serialize, Deserialize, QueryableByName)]
pub struct Streaks {
    #[diesel(sql_type = BigInt)]
    pub longest: i64,
    #[diesel(sql_type = Nullable<Date>)]
    pub longest_end: Option<NaiveDate>,
    /// The most recent run, and the day it ended: it is the current streak
    /// while that day is today or yesterday.
    #[diesel(sql_type = BigInt)]
    pub latest: i64,
    #[diesel(sql_type = Nullable<Date>)]
    pub latest_end: Option<NaiveDate>,
}

impl Streaks {
    /// The streak still running on `today`: the latest run, if its last day
    /// is today or yesterday (today may still bring an unlock).
    pub fn current(&self, today: NaiveDate) -> i64 {
        match self.latest_end {
            Some(end) if (today - end).num_days() <= 1 => self.latest,
            _ => 0,
        }
    }
}

/// The user's longest and latest streaks of days with an unlock.
pub fn streaks(conn: &mut PgConnection, user_id: i64) -> QueryResult<Streaks> {
    diesel::sql_query(
        "WITH days AS (
             SELECT DISTINCT (unlocked_at AT TIME ZONE 'UTC')::date AS d
             FROM user_achievements WHERE user_id = $1 AND unlocked_at IS NOT NULL
         ), runs AS (
             SELECT max(d) AS last_day, count(*)::int8 AS len
             FROM (SELECT d, d - (row_number() OVER (ORDER BY d))::int AS grp FROM days) t
             GROUP BY grp
         )
         SELECT coalesce((SELECT len FROM runs ORDER BY len DESC, last_day DESC LIMIT 1), 0) AS longest,
                (SELECT last_day FROM runs ORDER BY len DESC, last_day DESC LIMIT 1) AS longest_end,
                coalesce((SELECT len FROM runs ORDER BY last_day DESC LIMIT 1), 0) AS latest,
                (SELECT last_day FROM runs ORDER BY last_day DESC LIMIT 1) AS latest_end",
    )
    .bind::<BigInt, _>(user_id)
    .get_result(conn)
}

/// The user's unlocks per rarity tier, by the instance's thresholds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, QueryableByName)]
pub struct TierCounts {
    #[diesel(sql_type = BigInt)]
    pub ultra_rare: i64,
    #[diesel(sql_type = BigInt)]
    pub rare: i64,
    #[diesel(sql_type = BigInt)]
    pub uncommon: i64,
    #[diesel(sql_type = BigInt)]
    pub common: i64,
    #[diesel(sql_type = BigInt)]
    pub unknown: i64,
}

/// Counts the user's unlocks in each tier; `bounds` are the upper bounds
/// of ultra rare, rare and uncommon.
pub fn tier_counts(conn: &mut PgConnection, user_id: i64, bounds: [f64; 3]) -> QueryResult<TierCounts> {
    diesel::sql_query(
        "SELECT count(*) FILTER (WHERE p <= $2)::int8 AS ultra_rare,
                count(*) FILTER (WHERE p > $2 AND p <= $3)::int8 AS rare,
                count(*) FILTER (WHERE p > $3 AND p <= $4)::int8 AS uncommon,
                count(*) FILTER (WHERE p > $4)::int8 AS common,
                count(*) FILTER (WHERE p IS NULL)::int8 AS unknown
         FROM (SELECT ga.global_percent AS p FROM user_achievements ua
               JOIN game_achievements ga ON ga.id = ua.achievement_id WHERE ua.user_id = $1) t",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Double, _>(bounds[0])
    .bind::<Double, _>(bounds[1])
    .bind::<Double, _>(bounds[2])
    .get_result(conn)
}

/// One unlock in a list (rarest unlocks, the recent feed).
#[derive(Debug, Clone, Serialize, Deserialize, QueryableByName, get_size2::GetSize)]
pub struct UnlockItem {
    #[diesel(sql_type = BigInt)]
    pub appid: i64,
    #[diesel(sql_type = Text)]
    pub game: String,
    #[diesel(sql_type = Text)]
    pub achievement: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub icon_url: Option<String>,
    #[diesel(sql_type = Nullable<Double>)]
    pub global_percent: Option<f64>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub points: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub unlocked_at: Option<DateTime<Utc>>,
}

/// The columns of an [`UnlockItem`] over the user's (`$1`) unlocks.
const UNLOCK_ITEMS: &str =
    "SELECT g.appid, g.name AS game, ga.display_name AS achievement, ga.icon_url, ga.global_percent, ga.points,
            ua.unlocked_at
     FROM user_achievements ua
     JOIN game_achievements ga ON ga.id = ua.achievement_id
     JOIN games g ON g.appid = ga.appid
     WHERE ua.user_id = $1";

/// The user's rarest unlocks, rarest first.
pub fn rarest_unlocks(conn: &mut PgConnection, user_id: i64, limit: i64) -> QueryResult<Vec<UnlockItem>> {
    diesel::sql_query(format!(
        "{UNLOCK_ITEMS} AND ga.global_percent IS NOT NULL
         ORDER BY ga.global_percent ASC, ua.unlocked_at DESC NULLS LAST, ga.id LIMIT $2"
    ))
    .bind::<BigInt, _>(user_id)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// The user's newest unlocks, newest first.
pub fn recent_unlocks(conn: &mut PgConnection, user_id: i64, limit: i64) -> QueryResult<Vec<UnlockItem>> {
    // The newest few are picked from the (user, unlocked_at) index before
    // any join: joined first, all of a heavy user's 17,000 unlocks were
    // sorted for eight (7.5 ms).
    diesel::sql_query(
        "SELECT g.appid, g.name AS game, ga.display_name AS achievement, ga.icon_url, ga.global_percent, ga.points,
                ua.unlocked_at
         FROM (SELECT achievement_id, unlocked_at FROM user_achievements
               WHERE user_id = $1 AND unlocked_at IS NOT NULL
               ORDER BY unlocked_at DESC, achievement_id DESC LIMIT $2) ua
         JOIN game_achievements ga ON ga.id = ua.achievement_id
         JOIN games g ON g.appid = ga.appid
         ORDER BY ua.unlocked_at DESC, ua.achievement_id DESC",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// A perfect game and when its last achievement was unlocked.
#[derive(Debug, Clone, Serialize, Deserialize, QueryableByName, get_size2::GetSize)]
pub struct PerfectGame {
    #[diesel(sql_type = BigInt)]
    pub appid: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub icon_hash: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub achievement_count: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub perfected_at: Option<DateTime<Utc>>,
}

/// The columns of a [`PerfectGame`] over the user's (`$1`) perfect games.
const PERFECT_GAMES: &str =
    "SELECT g.appid, g.name, g.icon_hash, g.achievement_count, le.last_unlock_at AS perfected_at
     FROM library_entries le JOIN games g ON g.appid = le.appid
     WHERE le.user_id = $1 AND g.achievement_count > 0 AND le.unlocked_count >= g.achievement_count";

/// The user's perfect games, most recently perfected first.
pub fn perfect_games(conn: &mut PgConnection, user_id: i64, limit: i64) -> QueryResult<Vec<PerfectGame>> {
    diesel::sql_query(format!("{PERFECT_GAMES} ORDER BY le.last_unlock_at DESC NULLS LAST, lower(g.name) LIMIT $2"))
        .bind::<BigInt, _>(user_id)
        .bind::<BigInt, _>(limit)
        .load(conn)
}

/// How many unlocks the user has since `since`, and the rarest few.
pub fn unlocks_since(
    conn: &mut PgConnection,
    user_id: i64,
    since: DateTime<Utc>,
    top: i64,
) -> QueryResult<(i64, Vec<UnlockItem>)> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let n: N = diesel::sql_query("SELECT count(*) AS n FROM user_achievements WHERE user_id = $1 AND unlocked_at > $2")
        .bind::<BigInt, _>(user_id)
        .bind::<Timestamptz, _>(since)
        .get_result(conn)?;
    let rarest = diesel::sql_query(format!(
        "{UNLOCK_ITEMS} AND ua.unlocked_at > $2 ORDER BY ga.global_percent ASC NULLS LAST, ua.unlocked_at DESC LIMIT $3"
    ))
    .bind::<BigInt, _>(user_id)
    .bind::<Timestamptz, _>(since)
    .bind::<BigInt, _>(top)
    .load(conn)?;
    Ok((n.n, rarest))
}

/// Games the user perfected after `since` (their last unlock came then).
pub fn perfected_since(conn: &mut PgConnection, user_id: i64, since: DateTime<Utc>) -> QueryResult<Vec<PerfectGame>> {
    diesel::sql_query(format!("{PERFECT_GAMES} AND le.last_unlock_at > $2 ORDER BY le.last_unlock_at DESC"))
        .bind::<BigInt, _>(user_id)
        .bind::<Timestamptz, _>(since)
        .load(conn)
}

/// A library entry as the data export writes it.
#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct ExportedEntry {
    #[diesel(sql_type = BigInt)]
    pub appid: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub playtime_minutes: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub unlocked: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub achievements: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub points: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_played_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_unlock_at: Option<DateTime<Utc>>,
    /// Where the next batch starts: the name as PostgreSQL sorts it.
    #[diesel(sql_type = Text)]
    #[serde(skip)]
    pub sort_name: String,
}

/// The user's library by name, `limit` entries after `after` (the last
/// entry of the batch before; `None` for the first).
pub fn export_library(
    conn: &mut PgConnection,
    user_id: i64,
    after: Option<&ExportedEntry>,
    limit: i64,
) -> QueryResult<Vec<ExportedEntry>> {
    let (name, appid) = after.map_or((None, 0), |e| (Some(e.sort_name.as_str()), e.appid));
    diesel::sql_query(
        "SELECT g.appid, g.name, le.playtime_minutes, le.unlocked_count AS unlocked,
                g.achievement_count AS achievements, le.points, le.last_played_at, le.last_unlock_at,
                lower(g.name) AS sort_name
         FROM library_entries le JOIN games g ON g.appid = le.appid
         WHERE le.user_id = $1 AND ($2::text IS NULL OR (lower(g.name), g.appid) > ($2, $3))
         ORDER BY lower(g.name), g.appid LIMIT $4",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Nullable<Text>, _>(name)
    .bind::<BigInt, _>(appid)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// An unlock as the data export writes it.
#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct ExportedUnlock {
    #[diesel(sql_type = BigInt)]
    pub appid: i64,
    #[diesel(sql_type = Text)]
    pub game: String,
    #[diesel(sql_type = Text)]
    pub api_name: String,
    #[diesel(sql_type = Text)]
    pub achievement: String,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub unlocked_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Double>)]
    pub global_percent: Option<f64>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub points: i32,
    /// Where the next batch starts: the unlock time (none sorts first)
    /// and the achievement.
    #[diesel(sql_type = Timestamptz)]
    #[serde(skip)]
    pub sort_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    #[serde(skip)]
    pub achievement_id: i64,
}

/// The user's unlocks, oldest first, `limit` after `after` (the last of
/// the batch before; `None` for the first).
pub fn export_unlocks(
    conn: &mut PgConnection,
    user_id: i64,
    after: Option<&ExportedUnlock>,
    limit: i64,
) -> QueryResult<Vec<ExportedUnlock>> {
    let (at, id) = after.map_or((None, 0), |u| (Some(u.sort_at), u.achievement_id));
    diesel::sql_query(
        "SELECT g.appid, g.name AS game, ga.api_name, ga.display_name AS achievement, ua.unlocked_at,
                ga.global_percent, ga.points, ga.id AS achievement_id,
                coalesce(ua.unlocked_at, '0001-01-01 00:00:00+00') AS sort_at
         FROM user_achievements ua
         JOIN game_achievements ga ON ga.id = ua.achievement_id
         JOIN games g ON g.appid = ga.appid
         WHERE ua.user_id = $1
           AND ($2::timestamptz IS NULL OR (coalesce(ua.unlocked_at, '0001-01-01 00:00:00+00'), ga.id) > ($2, $3))
         ORDER BY coalesce(ua.unlocked_at, '0001-01-01 00:00:00+00'), ga.id LIMIT $4",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Nullable<Timestamptz>, _>(at)
    .bind::<BigInt, _>(id)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// A game two users both own, side by side.
#[derive(Debug, Clone, QueryableByName)]
pub struct CommonGame {
    #[diesel(sql_type = BigInt)]
    pub appid: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub icon_hash: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub achievement_count: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub mine_minutes: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub mine_unlocked: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub mine_points: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub theirs_minutes: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub theirs_unlocked: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub theirs_points: i32,
}

/// The games `me` and `them` both own, most played together first, at most
/// `limit`; and how many there are in all.
pub fn common_games(conn: &mut PgConnection, me: i64, them: i64, limit: i64) -> QueryResult<(Vec<CommonGame>, i64)> {
    let rows = diesel::sql_query(
        "SELECT g.appid, g.name, g.icon_hash, g.achievement_count,
                a.playtime_minutes AS mine_minutes, a.unlocked_count AS mine_unlocked, a.points AS mine_points,
                b.playtime_minutes AS theirs_minutes, b.unlocked_count AS theirs_unlocked, b.points AS theirs_points
         FROM library_entries a
         JOIN library_entries b ON b.user_id = $2 AND b.appid = a.appid
         JOIN games g ON g.appid = a.appid
         WHERE a.user_id = $1
         ORDER BY a.playtime_minutes + b.playtime_minutes DESC, lower(g.name) LIMIT $3",
    )
    .bind::<BigInt, _>(me)
    .bind::<BigInt, _>(them)
    .bind::<BigInt, _>(limit)
    .load(conn)?;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let n: N = diesel::sql_query(
        "SELECT count(*) AS n FROM library_entries a JOIN library_entries b ON b.user_id = $2 AND b.appid = a.appid
         WHERE a.user_id = $1",
    )
    .bind::<BigInt, _>(me)
    .bind::<BigInt, _>(them)
    .get_result(conn)?;
    Ok((rows, n.n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streak_is_current_until_a_whole_day_passes_without_an_unlock() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        let s = Streaks { longest: 9, longest_end: Some(day(1)), latest: 3, latest_end: Some(day(5)) };
        assert_eq!(s.current(day(5)), 3);
        assert_eq!(s.current(day(6)), 3, "today may still bring one");
        assert_eq!(s.current(day(7)), 0);
        assert_eq!(Streaks::default().current(day(7)), 0);
    }
}
