//! A user's library (`library_entries`) and unlocks (`user_achievements`):
//! the pages' queries and the writes of a sync or an import.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Integer, Nullable, Text, Timestamptz};
use diesel::upsert::excluded;
use serde::{Deserialize, Serialize};

use crate::schema::{game_achievements, games, library_entries, user_achievements};

/// Rows written per statement.
const CHUNK: usize = 1000;

/// A game's icon on Steam's media host, in Steam's URL shape.
pub fn icon_url(media: &url::Url, appid: i64, hash: &str) -> String {
    let base = media.as_str().trim_end_matches('/');
    format!("{base}/steamcommunity/public/images/apps/{appid}/{hash}.jpg")
}

/// Games per library page.
pub const PAGE_SIZE: i64 = 50;

/// One row of the library table.
#[derive(Debug, Clone, QueryableByName, get_size2::GetSize)]
pub struct LibraryRow {
    #[diesel(sql_type = BigInt)]
    pub appid: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub icon_hash: Option<String>,
    #[diesel(sql_type = Integer)]
    pub playtime_minutes: i32,
    #[diesel(sql_type = Integer)]
    pub unlocked_count: i32,
    #[diesel(sql_type = Integer)]
    pub achievement_count: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub last_unlock_at: Option<DateTime<Utc>>,
    /// The points of the user's unlocks in this game.
    #[diesel(sql_type = Integer)]
    pub points: i32,
    /// The user's rarest unlock in this game, and its name and global
    /// percentage (filled in for the page's rows only).
    #[diesel(sql_type = Nullable<BigInt>)]
    pub rarest_achievement_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub rarest_name: Option<String>,
    #[diesel(sql_type = Nullable<Double>)]
    pub rarest_percent: Option<f64>,
}

impl LibraryRow {
    pub fn hours(&self) -> String {
        format!("{:.1}", self.playtime_minutes as f64 / 60.0)
    }

    pub fn percent(&self) -> i32 {
        if self.achievement_count == 0 {
            0
        } else {
            (self.unlocked_count as f64 * 100.0 / self.achievement_count as f64).floor() as i32
        }
    }

    /// The game's icon on Steam's media host `media` (Steam's own URL shape:
    /// `/steamcommunity/public/images/apps/{appid}/{hash}.jpg`).
    pub fn icon_url(&self, media: &url::Url) -> Option<String> {
        self.icon_hash.as_ref().map(|h| icon_url(media, self.appid, h))
    }
}

/// The library's query string.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct LibraryQuery {
    pub q: Option<String>,
    pub filter: Option<String>,
    pub sort: Option<String>,
    pub page: Option<i64>,
}

impl LibraryQuery {
    /// The query as a cache key's part: equal for queries that give the
    /// same page.
    pub fn cache_params(&self) -> String {
        format!("{}\u{1f}{}\u{1f}{}", self.filter_sql(), self.order_sql(), crate::pagination::page_number(self.page))
    }

    /// Whether the page is worth keeping: not a search, and near the top.
    pub fn keepable(&self) -> bool {
        self.q.as_deref().unwrap_or("").trim().is_empty()
            && crate::pagination::page_number(self.page) <= crate::views::KEPT_PAGES
    }

    /// The filter, from a fixed list; anything else is none.
    fn filter_sql(&self) -> &'static str {
        match self.filter.as_deref() {
            Some("perfect") => "AND g.achievement_count > 0 AND le.unlocked_count >= g.achievement_count",
            Some("started") => "AND le.unlocked_count > 0 AND le.unlocked_count < g.achievement_count",
            Some("not_started") => "AND g.achievement_count > 0 AND le.unlocked_count = 0",
            _ => "",
        }
    }

    /// The order, from a fixed list; anything else is by name.
    fn order_sql(&self) -> &'static str {
        match self.sort.as_deref() {
            Some("playtime") => "le.playtime_minutes DESC",
            Some("completion") => "(le.unlocked_count::float8 / NULLIF(g.achievement_count, 0)) DESC NULLS LAST",
            Some("last_unlock") => "le.last_unlock_at DESC NULLS LAST",
            Some("points") => "le.points DESC",
            _ => "lower(g.name) ASC",
        }
    }
}

/// One page of a user's library, with how many games match in all.
/// Filter and sort names come from a fixed list; anything else falls back
/// to the default.
pub fn library_page(
    conn: &mut PgConnection,
    user_id: i64,
    query: &LibraryQuery,
) -> QueryResult<(Vec<LibraryRow>, i64)> {
    let (filter, order) = (query.filter_sql(), query.order_sql());
    let search = query.q.as_deref().unwrap_or("").trim().to_owned();
    // LIKE wildcards typed by the user are literal characters.
    let pattern = crate::db::contains_pattern(&search);
    let page = crate::pagination::page_number(query.page);
    // No window count: with one, PostgreSQL must join all of the user's
    // games before LIMIT can stop it (4 ms for 2,000 games); without, an
    // ordered index scan stops after the page. The total is its own query.
    let rows: Vec<LibraryRow> = diesel::sql_query(format!(
        "SELECT g.appid, g.name, g.icon_hash, le.playtime_minutes, le.unlocked_count, g.achievement_count,
                le.last_unlock_at, le.points, le.rarest_achievement_id,
                NULL::text AS rarest_name, NULL::float8 AS rarest_percent
         FROM library_entries le JOIN games g ON g.appid = le.appid
         WHERE le.user_id = $1 AND ($2 = '' OR g.name ILIKE $3) {filter}
         ORDER BY {order}, g.appid
         LIMIT $4 OFFSET $5"
    ))
    .bind::<BigInt, _>(user_id)
    .bind::<Text, _>(&search)
    .bind::<Text, _>(&pattern)
    .bind::<BigInt, _>(PAGE_SIZE)
    .bind::<BigInt, _>(crate::pagination::offset(page, PAGE_SIZE))
    .load(conn)?;
    // The rarest unlocks' names for this page's rows only: joined in the
    // query above, PostgreSQL joined every game of the library first.
    let mut rows = rows;
    name_rarest(conn, &mut rows)?;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    if search.is_empty() && filter.is_empty() {
        return Ok((rows, count_for(conn, user_id)?));
    }
    let count: Count = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM library_entries le JOIN games g ON g.appid = le.appid
         WHERE le.user_id = $1 AND ($2 = '' OR g.name ILIKE $3) {filter}"
    ))
    .bind::<BigInt, _>(user_id)
    .bind::<Text, _>(&search)
    .bind::<Text, _>(&pattern)
    .get_result(conn)?;
    Ok((rows, count.n))
}

/// Fills in the name and percentage of each row's rarest unlock.
fn name_rarest(conn: &mut PgConnection, rows: &mut [LibraryRow]) -> QueryResult<()> {
    let ids: Vec<i64> = rows.iter().filter_map(|r| r.rarest_achievement_id).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let names: HashMap<i64, (String, Option<f64>)> = game_achievements::table
        .filter(game_achievements::id.eq_any(&ids))
        .select((game_achievements::id, game_achievements::display_name, game_achievements::global_percent))
        .load::<(i64, String, Option<f64>)>(conn)?
        .into_iter()
        .map(|(id, name, pct)| (id, (name, pct)))
        .collect();
    for r in rows.iter_mut() {
        if let Some((name, pct)) = r.rarest_achievement_id.and_then(|id| names.get(&id)) {
            r.rarest_name = Some(name.clone());
            r.rarest_percent = *pct;
        }
    }
    Ok(())
}

/// How many games the user's library holds (an index-only count).
pub fn count_for(conn: &mut PgConnection, user_id: i64) -> QueryResult<i64> {
    library_entries::table.filter(library_entries::user_id.eq(user_id)).count().get_result(conn)
}

/// One achievement as the game page shows it.
#[derive(Debug, Clone, QueryableByName, get_size2::GetSize)]
pub struct AchievementRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub display_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub description: Option<String>,
    #[diesel(sql_type = Bool)]
    pub hidden: bool,
    #[diesel(sql_type = Nullable<Text>)]
    pub icon_url: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub icon_gray_url: Option<String>,
    #[diesel(sql_type = Nullable<Double>)]
    pub global_percent: Option<f64>,
    #[diesel(sql_type = Integer)]
    pub points: i32,
    #[diesel(sql_type = Bool)]
    pub unlocked: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub unlocked_at: Option<DateTime<Utc>>,
    /// Steam no longer lists it for the game: shown for history (only when
    /// the user had unlocked it), counted nowhere.
    #[diesel(sql_type = Bool)]
    pub removed: bool,
}

impl AchievementRow {
    /// Hidden achievements stay secret until unlocked.
    pub fn masked(&self) -> bool {
        self.hidden && !self.unlocked
    }
    pub fn rarity(&self) -> String {
        self.global_percent.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "–".into())
    }
}

/// A game as its page's header shows it, for one user.
#[derive(Debug, Clone, QueryableByName, get_size2::GetSize)]
pub struct GameHeader {
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Integer)]
    pub playtime_minutes: i32,
    #[diesel(sql_type = Integer)]
    pub unlocked_count: i32,
    #[diesel(sql_type = Integer)]
    pub achievement_count: i32,
    #[diesel(sql_type = Integer)]
    pub points: i32,
}

/// The header of a game's page, when the game is in the user's library.
pub fn game_header(conn: &mut PgConnection, user_id: i64, appid: i64) -> QueryResult<Option<GameHeader>> {
    diesel::sql_query(
        "SELECT g.name, le.playtime_minutes, le.unlocked_count, g.achievement_count, le.points
         FROM library_entries le JOIN games g ON g.appid = le.appid
         WHERE le.user_id = $1 AND le.appid = $2",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<BigInt, _>(appid)
    .get_result(conn)
    .optional()
}

/// A game's achievements with the user's unlocks, in the order `sort`
/// names (`rarity`, `name`, `recent`; anything else: unlocked first).
pub fn game_achievements(
    conn: &mut PgConnection,
    user_id: i64,
    appid: i64,
    sort: &str,
) -> QueryResult<Vec<AchievementRow>> {
    let order = match sort {
        "rarity" => "ga.global_percent ASC NULLS LAST",
        "common" => "ga.global_percent DESC NULLS LAST",
        "name" => "lower(ga.display_name) ASC",
        "recent" => "ua.unlocked_at DESC NULLS LAST",
        _ => "(ua.user_id IS NULL), ua.unlocked_at DESC NULLS LAST",
    };
    diesel::sql_query(format!(
        "SELECT ga.id, ga.display_name, ga.description, ga.hidden, ga.icon_url, ga.icon_gray_url, ga.global_percent,
                ga.points, (ua.user_id IS NOT NULL OR ru.user_id IS NOT NULL) AS unlocked,
                coalesce(ua.unlocked_at, ru.unlocked_at) AS unlocked_at, (ga.removed_at IS NOT NULL) AS removed
         FROM game_achievements ga
         LEFT JOIN user_achievements ua ON ua.achievement_id = ga.id AND ua.user_id = $1
         LEFT JOIN removed_unlocks ru ON ru.achievement_id = ga.id AND ru.user_id = $1 AND ga.removed_at IS NOT NULL
         WHERE ga.appid = $2 AND (ga.removed_at IS NULL OR ru.user_id IS NOT NULL)
         ORDER BY (ga.removed_at IS NOT NULL), {order}, ga.id"
    ))
    .bind::<BigInt, _>(user_id)
    .bind::<BigInt, _>(appid)
    .load(conn)
}

/// A user's library in a few numbers.
#[derive(Debug, Clone, Serialize, Deserialize, QueryableByName, get_size2::GetSize)]
pub struct Totals {
    #[diesel(sql_type = BigInt)]
    pub games: i64,
    #[diesel(sql_type = BigInt)]
    pub minutes: i64,
    #[diesel(sql_type = BigInt)]
    pub unlocked: i64,
    #[diesel(sql_type = BigInt)]
    pub perfect: i64,
    /// Mean completion of the games with at least one unlock (Steam's own
    /// definition of "average game completion").
    #[diesel(sql_type = Nullable<Double>)]
    pub average_completion: Option<f64>,
}

/// Unlocks in one month.
#[derive(Debug, Clone, Serialize, Deserialize, QueryableByName)]
pub struct MonthRow {
    #[diesel(sql_type = Timestamptz)]
    pub month: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// Everything computed for one user.
/// The user's totals: games, playtime, unlocks, perfect games, average
/// completion of the games started.
pub fn totals(conn: &mut PgConnection, user_id: i64) -> QueryResult<Totals> {
    diesel::sql_query(
        "SELECT count(*)::int8 AS games,
                coalesce(sum(le.playtime_minutes), 0)::int8 AS minutes,
                coalesce(sum(le.unlocked_count), 0)::int8 AS unlocked,
                count(*) FILTER (WHERE g.achievement_count > 0 AND le.unlocked_count >= g.achievement_count)::int8 AS perfect,
                avg(le.unlocked_count::float8 / g.achievement_count)
                    FILTER (WHERE le.unlocked_count > 0 AND g.achievement_count > 0) AS average_completion
         FROM library_entries le JOIN games g ON g.appid = le.appid
         WHERE le.user_id = $1",
    )
    .bind::<BigInt, _>(user_id)
    .get_result(conn)
}

/// Unlocks per month, for the months that have any, oldest first.
pub fn unlocks_by_month(conn: &mut PgConnection, user_id: i64) -> QueryResult<Vec<MonthRow>> {
    diesel::sql_query(
        "SELECT date_trunc('month', unlocked_at) AS month, count(*)::int8 AS count
         FROM user_achievements WHERE user_id = $1 AND unlocked_at IS NOT NULL
         GROUP BY 1 ORDER BY 1",
    )
    .bind::<BigInt, _>(user_id)
    .load(conn)
}

/// A library entry the importer writes.
#[derive(Insertable)]
#[diesel(table_name = library_entries, treat_none_as_default_value = false)]
pub struct EntryRow {
    pub user_id: i64,
    pub appid: i64,
    pub playtime_minutes: i32,
    pub unlocked_count: i32,
    pub last_unlock_at: Option<DateTime<Utc>>,
    pub import_run_id: Option<i64>,
}

/// An unlock the importer writes.
#[derive(Insertable)]
#[diesel(table_name = user_achievements, treat_none_as_default_value = false)]
pub struct UnlockRow {
    pub user_id: i64,
    pub achievement_id: i64,
    pub unlocked_at: Option<DateTime<Utc>>,
}

/// Pauses (`false`) or resumes the version note of inserted unlocks. Only
/// for a bulk load, which holds the table exclusively and whose accounts'
/// library entries, written in the same transaction, note them already:
/// capturing millions of rows in a transition table buys nothing there.
pub fn note_inserted_unlocks(conn: &mut PgConnection, on: bool) -> QueryResult<()> {
    let verb = if on { "ENABLE" } else { "DISABLE" };
    diesel::sql_query(format!("ALTER TABLE user_achievements {verb} TRIGGER user_achievements_versions_ins"))
        .execute(conn)
        .map(|_| ())
}

/// COPYs the buffered rows (binary format) and empties the buffers; library
/// entries first, since nothing references them.
pub fn copy_imported(
    conn: &mut PgConnection,
    entries: &mut Vec<EntryRow>,
    unlocks: &mut Vec<UnlockRow>,
) -> QueryResult<()> {
    if !entries.is_empty() {
        diesel::copy_from(library_entries::table).from_insertable(entries.as_slice()).execute(conn)?;
        entries.clear();
    }
    if !unlocks.is_empty() {
        diesel::copy_from(user_achievements::table).from_insertable(unlocks.as_slice()).execute(conn)?;
        unlocks.clear();
    }
    Ok(())
}

/// Removes the entries import run `run_id` added to accounts that existed
/// before it, with their unlocks; returns those accounts.
pub fn delete_imported(conn: &mut PgConnection, run_id: i64) -> QueryResult<Vec<i64>> {
    let touched: Vec<i64> = library_entries::table
        .filter(library_entries::import_run_id.eq(run_id))
        .select(library_entries::user_id)
        .distinct()
        .load(conn)?;
    diesel::sql_query(
        "DELETE FROM user_achievements ua USING library_entries le, game_achievements ga
         WHERE le.import_run_id = $1 AND ua.user_id = le.user_id
           AND ua.achievement_id = ga.id AND ga.appid = le.appid",
    )
    .bind::<BigInt, _>(run_id)
    .execute(conn)?;
    diesel::delete(library_entries::table.filter(library_entries::import_run_id.eq(run_id))).execute(conn)?;
    // The run's games that have since left a library go too, with the
    // unlocks set aside with them.
    diesel::sql_query(
        "WITH gone AS (DELETE FROM removed_games WHERE import_run_id = $1 RETURNING user_id, appid)
         DELETE FROM removed_unlocks ru USING gone, game_achievements ga
         WHERE ru.user_id = gone.user_id AND ru.achievement_id = ga.id AND ga.appid = gone.appid",
    )
    .bind::<BigInt, _>(run_id)
    .execute(conn)?;
    Ok(touched)
}

/// The state of a library entry that decides whether its game is fetched.
#[derive(Debug, Clone, Copy)]
pub struct EntrySyncState {
    /// The playtime when its achievements were last stored.
    pub synced_playtime: Option<i32>,
    /// When its achievements were last stored.
    pub synced_at: Option<DateTime<Utc>>,
    /// Failed fetches in a row.
    pub failures: i32,
    pub retry_after: Option<DateTime<Utc>>,
}

/// Each game's sync state in the user's library.
pub fn sync_states(conn: &mut PgConnection, user_id: i64) -> QueryResult<HashMap<i64, EntrySyncState>> {
    Ok(library_entries::table
        .filter(library_entries::user_id.eq(user_id))
        .select((
            library_entries::appid,
            library_entries::synced_playtime_minutes,
            library_entries::achievements_synced_at,
            library_entries::sync_failures,
            library_entries::retry_after,
        ))
        .load::<(i64, Option<i32>, Option<DateTime<Utc>>, i32, Option<DateTime<Utc>>)>(conn)?
        .into_iter()
        .map(|(a, synced_playtime, synced_at, failures, retry_after)| {
            (a, EntrySyncState { synced_playtime, synced_at, failures, retry_after })
        })
        .collect())
}

/// A game as Steam's owned-games list gives it.
#[derive(Debug, Insertable)]
#[diesel(table_name = library_entries)]
pub struct OwnedEntry {
    pub user_id: i64,
    pub appid: i64,
    pub playtime_minutes: i32,
    pub playtime_2weeks_minutes: i32,
    pub last_played_at: Option<DateTime<Utc>>,
}

/// Writes the owned games' playtime (new games get an entry); a game's
/// sync state moves only when its achievements are stored.
pub fn upsert_owned(conn: &mut PgConnection, entries: &[OwnedEntry]) -> QueryResult<usize> {
    diesel::insert_into(library_entries::table)
        .values(entries)
        .on_conflict((library_entries::user_id, library_entries::appid))
        .do_update()
        .set((
            library_entries::playtime_minutes.eq(excluded(library_entries::playtime_minutes)),
            library_entries::playtime_2weeks_minutes.eq(excluded(library_entries::playtime_2weeks_minutes)),
            library_entries::last_played_at.eq(excluded(library_entries::last_played_at)),
        ))
        .execute(conn)
}

/// When the earliest game that failed may be tried again.
pub fn earliest_retry(conn: &mut PgConnection, user_id: i64) -> QueryResult<Option<DateTime<Utc>>> {
    library_entries::table
        .filter(library_entries::user_id.eq(user_id))
        .filter(library_entries::sync_failures.gt(0))
        .select(diesel::dsl::min(library_entries::retry_after))
        .first(conn)
}

/// Records a failed fetch on the game, leaving its unlocks and sync state
/// as they were; it is tried again after `backoff(failures in a row)`.
pub fn record_game_failure(
    conn: &mut PgConnection,
    user_id: i64,
    appid: i64,
    message: &str,
    now: DateTime<Utc>,
    backoff: fn(i32) -> chrono::Duration,
) -> QueryResult<()> {
    conn.transaction(|conn| {
        let failures: i32 = library_entries::table
            .find((user_id, appid))
            .select(library_entries::sync_failures)
            .for_update()
            .first(conn)?;
        let failures = failures.saturating_add(1);
        diesel::update(library_entries::table.find((user_id, appid)))
            .set((
                library_entries::sync_failures.eq(failures),
                library_entries::sync_error.eq(message.chars().take(1000).collect::<String>()),
                library_entries::retry_after.eq(now + backoff(failures)),
            ))
            .execute(conn)
            .map(|_| ())
    })
}

/// A game whose last fetch failed.
#[derive(Debug, Clone, Queryable)]
pub struct UnsyncedGame {
    pub appid: i64,
    pub name: String,
    pub error: Option<String>,
    pub failures: i32,
    pub retry_after: Option<DateTime<Utc>>,
}

/// How many of the user's games' last fetch failed.
pub fn unsynced_count(conn: &mut PgConnection, user_id: i64) -> QueryResult<i64> {
    library_entries::table
        .filter(library_entries::user_id.eq(user_id))
        .filter(library_entries::sync_failures.gt(0))
        .count()
        .get_result(conn)
}

/// The first 50 of the user's games whose last fetch failed, most failures
/// first.
pub fn unsynced_games(conn: &mut PgConnection, user_id: i64) -> QueryResult<Vec<UnsyncedGame>> {
    library_entries::table
        .inner_join(games::table)
        .filter(library_entries::user_id.eq(user_id))
        .filter(library_entries::sync_failures.gt(0))
        .order((library_entries::sync_failures.desc(), games::name.asc()))
        .select((
            library_entries::appid,
            games::name,
            library_entries::sync_error,
            library_entries::sync_failures,
            library_entries::retry_after,
        ))
        .limit(50)
        .load(conn)
}

/// Marks every game of the user for fetching ("resync everything"),
/// failures and their backoff forgotten, and their games' schemas and
/// global percentages for fetching again too.
pub fn request_full_resync(conn: &mut PgConnection, user_id: i64) -> QueryResult<usize> {
    crate::models::game::Game::refresh_stats_of_user(conn, user_id)?;
    diesel::update(library_entries::table.filter(library_entries::user_id.eq(user_id)))
        .set((
            library_entries::synced_playtime_minutes.eq(None::<i32>),
            library_entries::sync_failures.eq(0),
            library_entries::retry_after.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
}

/// Replaces the user's unlocks in one game with what Steam listed and
/// refreshes the library entry's cached count, in one transaction. The
/// same achievement twice in Steam's answer is one unlock (the earliest
/// time); names the schema does not list (or lists as removed) count for
/// nothing. A game no longer in the library (it left the owned list while
/// its achievements were being fetched) stores nothing. False then.
pub fn replace_unlocks(
    conn: &mut PgConnection,
    user_id: i64,
    appid: i64,
    playtime: i32,
    unlocked: &[(String, Option<DateTime<Utc>>)],
) -> QueryResult<bool> {
    conn.transaction(|conn| {
        // The game's row first, shared: a schema write for the game (which
        // takes it exclusively) then never interleaves with this one, in
        // either order, and the two cannot deadlock.
        crate::models::game::Game::hold_for_unlocks(conn, appid)?;
        let owned: Option<i64> = library_entries::table
            .find((user_id, appid))
            .select(library_entries::appid)
            .for_update()
            .first(conn)
            .optional()?;
        if owned.is_none() {
            return Ok(false);
        }
        let every: Vec<(String, i64, bool)> = game_achievements::table
            .filter(game_achievements::appid.eq(appid))
            .select((game_achievements::api_name, game_achievements::id, game_achievements::removed_at.is_not_null()))
            .load(conn)?;
        let ids: HashMap<String, i64> =
            every.iter().filter(|(_, _, removed)| !removed).map(|(n, id, _)| (n.clone(), *id)).collect();
        let all_ids: Vec<i64> = every.iter().map(|(_, id, _)| *id).collect();
        diesel::delete(
            user_achievements::table
                .filter(user_achievements::user_id.eq(user_id))
                .filter(user_achievements::achievement_id.eq_any(&all_ids)),
        )
        .execute(conn)?;
        let mut known: HashMap<i64, Option<DateTime<Utc>>> = HashMap::new();
        for (name, at) in unlocked {
            if let Some(id) = ids.get(name) {
                known
                    .entry(*id)
                    .and_modify(|t| {
                        *t = match (*t, *at) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        }
                    })
                    .or_insert(*at);
            }
        }
        let mut known: Vec<(i64, Option<DateTime<Utc>>)> = known.into_iter().collect();
        known.sort_unstable_by_key(|(id, _)| *id);
        let rows: Vec<_> = known
            .iter()
            .map(|(id, at)| {
                (
                    user_achievements::user_id.eq(user_id),
                    user_achievements::achievement_id.eq(*id),
                    user_achievements::unlocked_at.eq(*at),
                )
            })
            .collect();
        for chunk in rows.chunks(CHUNK) {
            diesel::insert_into(user_achievements::table).values(chunk).execute(conn)?;
        }
        let last = known.iter().filter_map(|(_, t)| *t).max();
        // The game's sync state moves here, with its achievements, and only here.
        diesel::update(library_entries::table.find((user_id, appid)))
            .set((
                library_entries::unlocked_count.eq(rows.len() as i32),
                library_entries::last_unlock_at.eq(last),
                library_entries::achievements_synced_at.eq(Utc::now()),
                library_entries::synced_playtime_minutes.eq(playtime),
                library_entries::sync_failures.eq(0),
                library_entries::sync_error.eq(None::<String>),
                library_entries::retry_after.eq(None::<DateTime<Utc>>),
            ))
            .execute(conn)?;
        Ok(true)
    })
}

/// Moves the user's games that Steam no longer lists as owned (`owned`
/// is the whole list) out of the library: each to `removed_games`, its
/// unlocks to `removed_unlocks`, so nothing of them counts any more and
/// all of it can come back. Returns how many games left.
pub fn retire_missing(conn: &mut PgConnection, user_id: i64, owned: &[i64]) -> QueryResult<usize> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let moved: Count = diesel::sql_query(
        "WITH gone AS (
             DELETE FROM library_entries le
             WHERE le.user_id = $1 AND NOT (le.appid = ANY($2))
             RETURNING le.user_id, le.appid, le.playtime_minutes, le.last_played_at, le.import_run_id
         ), kept AS (
             INSERT INTO removed_games (user_id, appid, playtime_minutes, last_played_at, import_run_id)
             SELECT user_id, appid, playtime_minutes, last_played_at, import_run_id FROM gone
             ON CONFLICT (user_id, appid) DO UPDATE
                 SET playtime_minutes = excluded.playtime_minutes, last_played_at = excluded.last_played_at,
                     removed_at = now()
         ), unlocks AS (
             DELETE FROM user_achievements ua
             USING game_achievements ga, gone
             WHERE ua.user_id = $1 AND ga.id = ua.achievement_id AND ga.appid = gone.appid
             RETURNING ua.user_id, ua.achievement_id, ua.unlocked_at
         ), held AS (
             INSERT INTO removed_unlocks (user_id, achievement_id, unlocked_at)
             SELECT user_id, achievement_id, unlocked_at FROM unlocks
             ON CONFLICT (user_id, achievement_id) DO UPDATE SET unlocked_at = excluded.unlocked_at
         )
         SELECT count(*) AS n FROM gone",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<diesel::sql_types::Array<BigInt>, _>(owned)
    .get_result(conn)?;
    Ok(moved.n as usize)
}

/// Puts back into the library the games of `owned` that had left it (a
/// family share that came back), with the unlocks they had in achievements
/// their game still lists; the next fetch of their achievements then
/// makes them exactly Steam's again. Returns how many came back.
pub fn restore_returned(conn: &mut PgConnection, user_id: i64, owned: &[i64]) -> QueryResult<usize> {
    let back: Vec<i64> = diesel::sql_query(
        "WITH back AS (
             DELETE FROM removed_games WHERE user_id = $1 AND appid = ANY($2)
             RETURNING appid, playtime_minutes, last_played_at, import_run_id
         )
         INSERT INTO library_entries (user_id, appid, playtime_minutes, last_played_at, import_run_id)
         SELECT $1, appid, playtime_minutes, last_played_at, import_run_id FROM back
         ON CONFLICT (user_id, appid) DO NOTHING
         RETURNING appid",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<diesel::sql_types::Array<BigInt>, _>(owned)
    .load::<Appid>(conn)?
    .into_iter()
    .map(|a| a.appid)
    .collect();
    if back.is_empty() {
        return Ok(0);
    }
    diesel::sql_query(
        "WITH back AS (
             DELETE FROM removed_unlocks ru
             USING game_achievements ga
             WHERE ru.user_id = $1 AND ga.id = ru.achievement_id AND ga.appid = ANY($2) AND ga.removed_at IS NULL
             RETURNING ru.user_id, ru.achievement_id, ru.unlocked_at
         )
         INSERT INTO user_achievements (user_id, achievement_id, unlocked_at)
         SELECT user_id, achievement_id, unlocked_at FROM back
         ON CONFLICT DO NOTHING",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<diesel::sql_types::Array<BigInt>, _>(&back)
    .execute(conn)?;
    recount_entries(conn, Some(user_id), &back)?;
    Ok(back.len())
}

#[derive(QueryableByName)]
struct Appid {
    #[diesel(sql_type = BigInt)]
    appid: i64,
}

/// Sets each library entry's unlock count and last unlock from its unlocks:
/// `user`'s entries of `appids`, or (with no user) every owner's. Returns
/// how many entries moved.
pub fn recount_entries(conn: &mut PgConnection, user: Option<i64>, appids: &[i64]) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE library_entries le SET unlocked_count = c.n, last_unlock_at = c.last
         FROM (
             SELECT e.user_id, e.appid, count(ua.achievement_id)::int4 AS n, max(ua.unlocked_at) AS last
             FROM library_entries e
             LEFT JOIN game_achievements ga ON ga.appid = e.appid AND ga.removed_at IS NULL
             LEFT JOIN user_achievements ua ON ua.user_id = e.user_id AND ua.achievement_id = ga.id
             WHERE e.appid = ANY($2) AND ($1::int8 IS NULL OR e.user_id = $1)
             GROUP BY e.user_id, e.appid
         ) c
         WHERE le.user_id = c.user_id AND le.appid = c.appid
           AND (le.unlocked_count <> c.n OR le.last_unlock_at IS DISTINCT FROM c.last)",
    )
    .bind::<Nullable<BigInt>, _>(user)
    .bind::<diesel::sql_types::Array<BigInt>, _>(appids)
    .execute(conn)
}

/// Sets every user's unlocks of these achievements aside (they left their
/// game's schema): kept in `removed_unlocks`, counted nowhere.
pub fn set_aside_unlocks(conn: &mut PgConnection, achievement_ids: &[i64]) -> QueryResult<usize> {
    if achievement_ids.is_empty() {
        return Ok(0);
    }
    diesel::sql_query(
        "WITH unlocks AS (
             DELETE FROM user_achievements WHERE achievement_id = ANY($1)
             RETURNING user_id, achievement_id, unlocked_at
         )
         INSERT INTO removed_unlocks (user_id, achievement_id, unlocked_at)
         SELECT user_id, achievement_id, unlocked_at FROM unlocks
         ON CONFLICT (user_id, achievement_id) DO UPDATE SET unlocked_at = excluded.unlocked_at",
    )
    .bind::<diesel::sql_types::Array<BigInt>, _>(achievement_ids)
    .execute(conn)
}

/// Puts back the set-aside unlocks of these achievements of `appid` (its
/// schema lists them again) for the users who still own the game; a game
/// that left a library keeps them aside until it comes back.
pub fn restore_unlocks(conn: &mut PgConnection, appid: i64, achievement_ids: &[i64]) -> QueryResult<usize> {
    if achievement_ids.is_empty() {
        return Ok(0);
    }
    diesel::sql_query(
        "WITH unlocks AS (
             DELETE FROM removed_unlocks ru USING library_entries le
             WHERE ru.achievement_id = ANY($2) AND le.user_id = ru.user_id AND le.appid = $1
             RETURNING ru.user_id, ru.achievement_id, ru.unlocked_at
         )
         INSERT INTO user_achievements (user_id, achievement_id, unlocked_at)
         SELECT user_id, achievement_id, unlocked_at FROM unlocks ON CONFLICT DO NOTHING",
    )
    .bind::<BigInt, _>(appid)
    .bind::<diesel::sql_types::Array<BigInt>, _>(achievement_ids)
    .execute(conn)
}

/// The users who own any of these games.
pub fn owners_of(conn: &mut PgConnection, appids: &[i64]) -> QueryResult<Vec<i64>> {
    library_entries::table
        .filter(library_entries::appid.eq_any(appids))
        .select(library_entries::user_id)
        .distinct()
        .order(library_entries::user_id)
        .load(conn)
}

/// The user's games that left their library, most recent first, at most
/// `limit` of them, with how many there are.
pub fn removed_games(conn: &mut PgConnection, user_id: i64, limit: i64) -> QueryResult<(Vec<RemovedGame>, i64)> {
    use crate::schema::removed_games;
    let rows = removed_games::table
        .inner_join(games::table.on(games::appid.eq(removed_games::appid)))
        .filter(removed_games::user_id.eq(user_id))
        .order((removed_games::removed_at.desc(), games::name.asc()))
        .select((removed_games::appid, games::name, removed_games::playtime_minutes, removed_games::removed_at))
        .limit(limit)
        .load(conn)?;
    let total = removed_games::table.filter(removed_games::user_id.eq(user_id)).count().get_result(conn)?;
    Ok((rows, total))
}

/// A game that left the user's library.
#[derive(Debug, Clone, Queryable, get_size2::GetSize)]
pub struct RemovedGame {
    pub appid: i64,
    pub name: String,
    pub playtime_minutes: i32,
    pub removed_at: DateTime<Utc>,
}

/// Deletes the user's whole library and unlocks, those that left it
/// included (the Steam account was unlinked, or replaced by another).
/// Returns how many games went.
pub fn delete_all_for(conn: &mut PgConnection, user_id: i64) -> QueryResult<usize> {
    use crate::schema::{removed_games, removed_unlocks};
    // Unlocks before the ones set aside, entries before the ones that left:
    // a schema write moving a row between them in between leaves nothing.
    diesel::delete(user_achievements::table.filter(user_achievements::user_id.eq(user_id))).execute(conn)?;
    diesel::delete(removed_unlocks::table.filter(removed_unlocks::user_id.eq(user_id))).execute(conn)?;
    let games = diesel::delete(library_entries::table.filter(library_entries::user_id.eq(user_id))).execute(conn)?;
    diesel::delete(removed_games::table.filter(removed_games::user_id.eq(user_id))).execute(conn)?;
    Ok(games)
}

/// Which library entries [`refresh_points`] works out again.
#[derive(Debug, Clone, Copy)]
pub enum PointsScope<'a> {
    /// Every entry of these users (after a sync or an import).
    Users(&'a [i64]),
    /// Every owner's entry of these games (their percentages changed).
    Games(&'a [i64]),
}

/// A change of one user's points, from [`refresh_points`].
#[derive(Debug, QueryableByName)]
pub struct PointsDelta {
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = BigInt)]
    pub delta: i64,
}

/// Works out again, in one statement, the points of each library entry in
/// `scope` (the sum of its unlocked achievements' points) and its rarest
/// unlock; returns how each user's points moved, entry by entry, so totals
/// can follow without summing whole libraries.
pub fn refresh_points(conn: &mut PgConnection, scope: PointsScope<'_>) -> QueryResult<Vec<PointsDelta>> {
    // The unlocks are read from the narrow side: a user's unlocks by the
    // primary key, or a game's by its achievements (about 25) and the
    // achievement index; never every unlock of every owner of a game.
    let (unlocks, entries, ids) = match scope {
        PointsScope::Users(ids) => ("ua.user_id = ANY($1)", "le.user_id = ANY($1)", ids),
        PointsScope::Games(ids) => ("ga.appid = ANY($1)", "le.appid = ANY($1)", ids),
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    conn.transaction(|conn| {
        // A hundred games' owners aggregate about a million unlocks: sorted
        // in memory rather than spilled to disk (measured: 4.9 s to 3.8 s).
        diesel::sql_query("SET LOCAL work_mem = '64MB'").execute(conn)?;
        refresh_points_statement(conn, unlocks, entries, ids)
    })
}

fn refresh_points_statement(
    conn: &mut PgConnection,
    unlocks: &str,
    entries: &str,
    ids: &[i64],
) -> QueryResult<Vec<PointsDelta>> {
    diesel::sql_query(format!(
        "WITH unlocked AS (
             SELECT ua.user_id, ga.appid, sum(ga.points)::int4 AS points,
                    (array_agg(ga.id ORDER BY ga.global_percent ASC NULLS LAST, ga.id))[1] AS rarest
             FROM user_achievements ua JOIN game_achievements ga ON ga.id = ua.achievement_id
             WHERE {unlocks} AND ga.removed_at IS NULL
             GROUP BY ua.user_id, ga.appid
         ), fresh AS (
             SELECT le.user_id, le.appid, le.points AS old, coalesce(u.points, 0) AS new, u.rarest
             FROM library_entries le
             LEFT JOIN unlocked u ON u.user_id = le.user_id AND u.appid = le.appid
             WHERE {entries}
         )
         UPDATE library_entries le SET points = f.new, rarest_achievement_id = f.rarest
         FROM fresh f
         WHERE le.user_id = f.user_id AND le.appid = f.appid
           AND (le.points <> f.new OR le.rarest_achievement_id IS DISTINCT FROM f.rarest)
         RETURNING le.user_id, (f.new - f.old)::int8 AS delta"
    ))
    .bind::<diesel::sql_types::Array<BigInt>, _>(ids)
    .load(conn)
}

/// A user's totals worked out from their library, for `user_scores`.
#[derive(Debug, QueryableByName)]
pub struct LibraryTotals {
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = BigInt)]
    pub points: i64,
    #[diesel(sql_type = BigInt)]
    pub unlocked: i64,
    #[diesel(sql_type = BigInt)]
    pub perfect: i64,
    #[diesel(sql_type = BigInt)]
    pub games: i64,
}

/// Each user's points, unlocks, perfect games and games, summed over their
/// library (zeros for an empty one).
pub fn totals_of(conn: &mut PgConnection, user_ids: &[i64]) -> QueryResult<Vec<LibraryTotals>> {
    diesel::sql_query(
        "SELECT u.id AS user_id, coalesce(sum(le.points), 0)::int8 AS points,
                coalesce(sum(le.unlocked_count), 0)::int8 AS unlocked,
                count(le.appid) FILTER (WHERE g.achievement_count > 0
                                          AND le.unlocked_count >= g.achievement_count)::int8 AS perfect,
                count(le.appid)::int8 AS games
         FROM unnest($1::int8[]) AS u(id)
         LEFT JOIN library_entries le ON le.user_id = u.id
         LEFT JOIN games g ON g.appid = le.appid
         GROUP BY u.id",
    )
    .bind::<diesel::sql_types::Array<BigInt>, _>(user_ids)
    .load(conn)
}

/// Started games closest to 100%, for the dashboard (which shows no
/// rarest unlock: it is left out).
pub fn closest_to_perfect(conn: &mut PgConnection, user_id: i64, limit: i64) -> QueryResult<Vec<LibraryRow>> {
    diesel::sql_query(
        "SELECT g.appid, g.name, g.icon_hash, le.playtime_minutes, le.unlocked_count, g.achievement_count,
                le.last_unlock_at, le.points, NULL::int8 AS rarest_achievement_id,
                NULL::text AS rarest_name, NULL::float8 AS rarest_percent
         FROM library_entries le JOIN games g ON g.appid = le.appid
         WHERE le.user_id = $1 AND le.unlocked_count > 0 AND le.unlocked_count < g.achievement_count
         ORDER BY le.unlocked_count::float8 / g.achievement_count DESC, g.achievement_count - le.unlocked_count, g.appid
         LIMIT $2",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// The games in these users' libraries: (user, appid, whether its legacy
/// data is still its source: an import brought it and Steam has not
/// synced it since).
pub fn appids_of_many(conn: &mut PgConnection, user_ids: &[i64]) -> QueryResult<Vec<(i64, i64, bool)>> {
    library_entries::table
        .filter(library_entries::user_id.eq_any(user_ids))
        .select((
            library_entries::user_id,
            library_entries::appid,
            library_entries::import_run_id.is_not_null().and(library_entries::achievements_synced_at.is_null()),
        ))
        .load(conn)
}

/// Locks these users' library entries until the transaction ends (in key
/// order, as every writer takes them).
pub fn lock_entries(conn: &mut PgConnection, user_ids: &[i64]) -> QueryResult<()> {
    diesel::sql_query("SELECT 1 FROM library_entries WHERE user_id = ANY($1) ORDER BY user_id, appid FOR UPDATE")
        .bind::<diesel::sql_types::Array<BigInt>, _>(user_ids)
        .execute(conn)
        .map(|_| ())
}

/// These users' unlocks: (user, achievement), by the primary key.
pub fn unlocks_of_many(conn: &mut PgConnection, user_ids: &[i64]) -> QueryResult<Vec<(i64, i64)>> {
    user_achievements::table
        .filter(user_achievements::user_id.eq_any(user_ids))
        .select((user_achievements::user_id, user_achievements::achievement_id))
        .load(conn)
}

/// Adds unlocks to library entries that exist already (an import bringing
/// rows an earlier run skipped), counts those entries again, and returns
/// the (user, achievement) pairs it added (one a sync added meanwhile is
/// left as it is).
pub fn add_unlocks(conn: &mut PgConnection, rows: &[UnlockRow]) -> QueryResult<Vec<(i64, i64)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let added: Vec<(i64, i64)> = diesel::insert_into(user_achievements::table)
        .values(rows)
        .on_conflict_do_nothing()
        .returning((user_achievements::user_id, user_achievements::achievement_id))
        .get_results(conn)?;
    let users: Vec<i64> = added.iter().map(|r| r.0).collect();
    let ids: Vec<i64> = added.iter().map(|r| r.1).collect();
    diesel::sql_query(
        "UPDATE library_entries le SET unlocked_count = c.n, last_unlock_at = c.last
         FROM (SELECT ua.user_id, ga.appid, count(*)::int AS n, max(ua.unlocked_at) AS last
               FROM user_achievements ua JOIN game_achievements ga ON ga.id = ua.achievement_id
               WHERE ga.removed_at IS NULL
                 AND (ua.user_id, ga.appid) IN (SELECT k.u, g.appid FROM unnest($1::int8[], $2::int8[]) AS k(u, a)
                                               JOIN game_achievements g ON g.id = k.a)
               GROUP BY ua.user_id, ga.appid) c
         WHERE le.user_id = c.user_id AND le.appid = c.appid",
    )
    .bind::<diesel::sql_types::Array<BigInt>, _>(&users)
    .bind::<diesel::sql_types::Array<BigInt>, _>(&ids)
    .execute(conn)?;
    Ok(added)
}

#[cfg(test)]
mod tests {
    #[test]
    fn icons_use_steams_media_host_and_url_shape() {
        let media = url::Url::parse("https://media.steampowered.com").unwrap();
        assert_eq!(
            super::icon_url(&media, 400, "cfa928ab4119dd137e50d728e8fe703e4e970aff"),
            "https://media.steampowered.com/steamcommunity/public/images/apps/400/cfa928ab4119dd137e50d728e8fe703e4e970aff.jpg"
        );
        let fake = url::Url::parse("http://127.0.0.1:9000/").unwrap();
        assert!(
            super::icon_url(&fake, 1, "ab").starts_with("http://127.0.0.1:9000/steamcommunity/public/images/apps/1/")
        );
    }
}
