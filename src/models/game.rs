//! The shared game catalogue and per-user progress.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text};
use diesel::upsert::excluded;
use std::collections::HashMap;

use crate::schema::{game_achievements, games, library_entries, user_achievements};

/// A Steam app, stored once for all users.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = games, primary_key(appid), check_for_backend(Pg))]
pub struct Game {
    pub appid: i64,
    pub name: String,
    pub icon_hash: Option<String>,
    pub achievement_count: i32,
    pub schema_fetched_at: Option<DateTime<Utc>>,
    pub global_percentages_fetched_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The fields a library listing or sync knows about a game.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = games)]
pub struct NewGame<'a> {
    pub appid: i64,
    pub name: &'a str,
    pub icon_hash: Option<&'a str>,
}

impl Game {
    /// Inserts or renames games in one statement, whatever their number.
    pub fn upsert_many(conn: &mut PgConnection, rows: &[NewGame<'_>]) -> QueryResult<usize> {
        diesel::insert_into(games::table)
            .values(rows)
            .on_conflict(games::appid)
            .do_update()
            .set((games::name.eq(excluded(games::name)), games::icon_hash.eq(excluded(games::icon_hash))))
            .execute(conn)
    }

    /// Records that a game's schema or percentages could not be fetched:
    /// tried again after `backoff(failures in a row)`, by any user's sync.
    pub fn record_stats_failure(
        conn: &mut PgConnection,
        appid: i64,
        message: &str,
        backoff: fn(i32) -> chrono::Duration,
    ) -> QueryResult<()> {
        conn.transaction(|conn| {
            let failures: i32 = games::table.find(appid).select(games::stats_failures).for_update().first(conn)?;
            let failures = failures.saturating_add(1);
            diesel::update(games::table.find(appid))
                .set((
                    games::stats_failures.eq(failures),
                    games::stats_error.eq(message.chars().take(1000).collect::<String>()),
                    games::stats_retry_after.eq(Utc::now() + backoff(failures)),
                ))
                .execute(conn)
                .map(|_| ())
        })
    }

    /// Takes the game's row shared until the transaction ends: what stores
    /// one user's unlocks in the game does, so a schema write (which takes
    /// it exclusively, see [`Game::hold_for_schema`]) waits for it.
    pub fn hold_for_unlocks(conn: &mut PgConnection, appid: i64) -> QueryResult<()> {
        games::table.find(appid).select(games::appid).for_share().first::<i64>(conn).optional().map(|_| ())
    }

    /// Takes the game's row exclusively until the transaction ends, before
    /// its schema is written.
    pub fn hold_for_schema(conn: &mut PgConnection, appid: i64) -> QueryResult<()> {
        games::table.find(appid).select(games::appid).for_update().first::<i64>(conn).optional().map(|_| ())
    }

    /// Marks the schemas and percentages of the user's games due a fetch
    /// ("resync everything"), their failures forgotten.
    pub fn refresh_stats_of_user(conn: &mut PgConnection, user_id: i64) -> QueryResult<usize> {
        diesel::update(games::table.filter(games::appid.eq_any(
            library_entries::table.filter(library_entries::user_id.eq(user_id)).select(library_entries::appid),
        )))
        .set((
            games::schema_fetched_at.eq(None::<DateTime<Utc>>),
            games::global_percentages_fetched_at.eq(None::<DateTime<Utc>>),
            games::stats_failures.eq(0),
            games::stats_retry_after.eq(None::<DateTime<Utc>>),
        ))
        .execute(conn)
    }

    pub fn find(conn: &mut PgConnection, appid: i64) -> QueryResult<Option<Game>> {
        games::table.find(appid).select(Game::as_select()).first(conn).optional()
    }
}

/// What writing a schema changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaChange {
    /// The game's achievement count moved (perfect games move with it).
    pub count_changed: bool,
    /// Achievements no longer listed, and listed again.
    pub removed: Vec<i64>,
    pub restored: Vec<i64>,
}

impl SchemaChange {
    /// Whether owners' counts and totals must be worked out again.
    pub fn moves_owners(&self) -> bool {
        self.count_changed || !self.removed.is_empty() || !self.restored.is_empty()
    }
}

/// One achievement of a game's schema.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = game_achievements, check_for_backend(Pg))]
pub struct GameAchievement {
    pub id: i64,
    pub appid: i64,
    pub api_name: String,
    pub display_name: String,
    pub description: Option<String>,
    pub hidden: bool,
    pub icon_url: Option<String>,
    pub icon_gray_url: Option<String>,
    pub global_percent: Option<f64>,
}

/// A schema entry as a sync or import writes it.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = game_achievements)]
pub struct NewGameAchievement<'a> {
    pub appid: i64,
    pub api_name: &'a str,
    pub display_name: &'a str,
    pub description: Option<&'a str>,
    pub hidden: bool,
    pub icon_url: Option<&'a str>,
    pub icon_gray_url: Option<&'a str>,
}

impl GameAchievement {
    /// Writes a game's schema as Steam now lists it and refreshes its cached
    /// achievement count, in one transaction so the count never disagrees
    /// with the rows. The same name twice is one achievement (the first).
    /// Achievements the list no longer names are marked removed (kept for
    /// history); one listed again is unmarked. Says what moved, so the
    /// caller sets their unlocks aside or back and owners' totals follow.
    pub fn replace_schema(
        conn: &mut PgConnection,
        appid: i64,
        rows: &[NewGameAchievement<'_>],
    ) -> QueryResult<SchemaChange> {
        conn.transaction(|conn| {
            let mut seen = std::collections::HashSet::new();
            let rows: Vec<&NewGameAchievement<'_>> = rows.iter().filter(|r| seen.insert(r.api_name)).collect();
            let names: Vec<&str> = rows.iter().map(|r| r.api_name).collect();
            let before: i32 =
                games::table.find(appid).select(games::achievement_count).first(conn).optional()?.unwrap_or(0);
            if !rows.is_empty() {
                diesel::insert_into(game_achievements::table)
                    .values(rows.iter().map(|r| (*r).clone()).collect::<Vec<_>>())
                    .on_conflict((game_achievements::appid, game_achievements::api_name))
                    .do_update()
                    .set((
                        game_achievements::display_name.eq(excluded(game_achievements::display_name)),
                        game_achievements::description.eq(excluded(game_achievements::description)),
                        game_achievements::hidden.eq(excluded(game_achievements::hidden)),
                        game_achievements::icon_url.eq(excluded(game_achievements::icon_url)),
                        game_achievements::icon_gray_url.eq(excluded(game_achievements::icon_gray_url)),
                    ))
                    .execute(conn)?;
            }
            let removed: Vec<i64> = diesel::update(
                game_achievements::table
                    .filter(game_achievements::appid.eq(appid))
                    .filter(game_achievements::removed_at.is_null())
                    .filter(diesel::dsl::not(game_achievements::api_name.eq_any(&names))),
            )
            .set(game_achievements::removed_at.eq(diesel::dsl::now))
            .returning(game_achievements::id)
            .get_results(conn)?;
            let restored: Vec<i64> = diesel::update(
                game_achievements::table
                    .filter(game_achievements::appid.eq(appid))
                    .filter(game_achievements::removed_at.is_not_null())
                    .filter(game_achievements::api_name.eq_any(&names)),
            )
            .set(game_achievements::removed_at.eq(None::<DateTime<Utc>>))
            .returning(game_achievements::id)
            .get_results(conn)?;
            let count: i64 = game_achievements::table
                .filter(game_achievements::appid.eq(appid))
                .filter(game_achievements::removed_at.is_null())
                .count()
                .get_result(conn)?;
            diesel::update(games::table.find(appid))
                .set((
                    games::achievement_count.eq(count as i32),
                    games::schema_fetched_at.eq(diesel::dsl::now),
                    games::stats_error.eq(None::<String>),
                    games::stats_failures.eq(0),
                    games::stats_retry_after.eq(None::<DateTime<Utc>>),
                ))
                .execute(conn)?;
            // A game's first schema moves nobody's numbers: no one can have
            // unlocks of achievements the instance did not know.
            Ok(SchemaChange { count_changed: before > 0 && count as i32 != before, removed, restored })
        })
    }

    /// A game's schema in a stable order.
    pub fn for_game(conn: &mut PgConnection, appid: i64) -> QueryResult<Vec<GameAchievement>> {
        game_achievements::table
            .filter(game_achievements::appid.eq(appid))
            .order(game_achievements::id)
            .select(GameAchievement::as_select())
            .load(conn)
    }
}

/// A game in one user's library.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = library_entries, check_for_backend(Pg))]
pub struct LibraryEntry {
    pub user_id: i64,
    pub appid: i64,
    pub playtime_minutes: i32,
    pub playtime_2weeks_minutes: i32,
    pub last_played_at: Option<DateTime<Utc>>,
    pub unlocked_count: i32,
    pub last_unlock_at: Option<DateTime<Utc>>,
    pub achievements_synced_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One unlocked achievement of one user.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = user_achievements, check_for_backend(Pg))]
pub struct UserAchievement {
    pub user_id: i64,
    pub achievement_id: i64,
    pub unlocked_at: Option<DateTime<Utc>>,
}

/// An achievement definition's id.
#[derive(QueryableByName)]
pub struct DefinitionId {
    #[diesel(sql_type = BigInt)]
    pub appid: i64,
    #[diesel(sql_type = Text)]
    pub api_name: String,
    #[diesel(sql_type = BigInt)]
    pub id: i64,
}

/// Achievement definitions the importer writes, column by column.
pub struct ImportedDefinitions<'a> {
    /// Ids to use, one per definition (a dry run's own); empty: the
    /// sequence's, drawn only for the definitions actually added.
    pub ids: &'a [i64],
    pub appids: &'a [i64],
    pub api_names: &'a [String],
    pub names: &'a [String],
    pub descriptions: &'a [String],
}

impl Game {
    /// When each game's achievement schema was last fetched.
    /// Whether `names` holds one this game's schema does not know (removed
    /// ones are known), and the schema was fetched before `older_than`.
    pub fn schema_misses(
        conn: &mut PgConnection,
        appid: i64,
        names: &[String],
        older_than: DateTime<Utc>,
    ) -> QueryResult<bool> {
        if names.is_empty() {
            return Ok(false);
        }
        let fetched: Option<Option<DateTime<Utc>>> =
            games::table.find(appid).select(games::schema_fetched_at).first(conn).optional()?;
        if fetched.flatten().is_some_and(|t| t > older_than) {
            return Ok(false);
        }
        let known: std::collections::HashSet<String> = game_achievements::table
            .filter(game_achievements::appid.eq(appid))
            .select(game_achievements::api_name)
            .load::<String>(conn)?
            .into_iter()
            .collect();
        Ok(names.iter().any(|n| !known.contains(n)))
    }

    /// Which of these games have achievements, as far as this instance knows.
    pub fn with_achievements(conn: &mut PgConnection, appids: &[i64]) -> QueryResult<std::collections::HashSet<i64>> {
        Ok(games::table
            .filter(games::appid.eq_any(appids))
            .filter(games::achievement_count.gt(0))
            .select(games::appid)
            .load::<i64>(conn)?
            .into_iter()
            .collect())
    }

    /// Which of these games' schemas and global percentages are due a
    /// fetch: never fetched, fetched before `older_than` (percentages too,
    /// for a game with achievements), and not backing off a failure.
    pub fn stats_due(
        conn: &mut PgConnection,
        appids: &[i64],
        older_than: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> QueryResult<std::collections::HashSet<i64>> {
        /// What decides whether a game's stats are due.
        #[derive(Queryable)]
        struct Fetched {
            schema: Option<DateTime<Utc>>,
            percentages: Option<DateTime<Utc>>,
            count: i32,
            retry_after: Option<DateTime<Utc>>,
        }
        let known: HashMap<i64, Fetched> = games::table
            .filter(games::appid.eq_any(appids))
            .select((
                games::appid,
                (
                    games::schema_fetched_at,
                    games::global_percentages_fetched_at,
                    games::achievement_count,
                    games::stats_retry_after,
                ),
            ))
            .load::<(i64, Fetched)>(conn)?
            .into_iter()
            .collect();
        let stale = |t: Option<DateTime<Utc>>| t.is_none_or(|t| t <= older_than);
        Ok(appids
            .iter()
            .copied()
            .filter(|a| match known.get(a) {
                None => true,
                Some(f) if f.retry_after.is_some_and(|r| r > now) => false,
                Some(f) => stale(f.schema) || (f.count > 0 && stale(f.percentages)),
            })
            .collect())
    }

    /// Adds the games import run `run_id` found that Questline lacks.
    pub fn insert_imported(
        conn: &mut PgConnection,
        appids: &[i64],
        names: &[String],
        run_id: i64,
    ) -> QueryResult<usize> {
        diesel::sql_query(
            "INSERT INTO games (appid, name, import_run_id)
             SELECT a, n, $3 FROM unnest($1::bigint[], $2::text[]) AS t(a, n) ON CONFLICT DO NOTHING",
        )
        .bind::<Array<BigInt>, _>(appids)
        .bind::<Array<Text>, _>(names)
        .bind::<BigInt, _>(run_id)
        .execute(conn)
    }

    /// Sets each game's achievement count to its definitions'.
    pub fn recount_achievements(conn: &mut PgConnection, appids: &[i64]) -> QueryResult<usize> {
        diesel::sql_query(
            "UPDATE games g SET achievement_count = c.n
             FROM (SELECT appid, count(*)::int AS n FROM game_achievements
                   WHERE appid = ANY($1) AND removed_at IS NULL GROUP BY appid) c
             WHERE g.appid = c.appid AND g.achievement_count <> c.n",
        )
        .bind::<Array<BigInt>, _>(appids)
        .execute(conn)
    }

    /// Puts back the counts (and, when nothing else changed them since, the
    /// timestamps) import run `run_id` changed on games that existed before it.
    pub fn restore_imported_counts(conn: &mut PgConnection, run_id: i64) -> QueryResult<usize> {
        diesel::sql_query(
            "UPDATE games g SET
                 achievement_count = c.n,
                 updated_at = CASE WHEN c.n = p.achievement_count THEN p.updated_at ELSE now() END
             FROM import_game_counts p,
                  LATERAL (SELECT count(*)::int AS n FROM game_achievements ga
                           WHERE ga.appid = p.appid AND ga.removed_at IS NULL) c
             WHERE p.run_id = $1 AND g.appid = p.appid",
        )
        .bind::<BigInt, _>(run_id)
        .execute(conn)
    }

    /// Removes the games import run `run_id` added that nothing uses now.
    pub fn delete_imported(conn: &mut PgConnection, run_id: i64) -> QueryResult<usize> {
        diesel::sql_query(
            "DELETE FROM games g WHERE g.import_run_id = $1
               AND NOT EXISTS (SELECT 1 FROM library_entries le WHERE le.appid = g.appid)
               AND NOT EXISTS (SELECT 1 FROM removed_games rg WHERE rg.appid = g.appid)
               AND NOT EXISTS (SELECT 1 FROM game_achievements ga WHERE ga.appid = g.appid)",
        )
        .bind::<BigInt, _>(run_id)
        .execute(conn)
    }
}

impl GameAchievement {
    /// Stores Steam's global unlock percentages for a game's achievements,
    /// and when they were fetched; returns how many percentages changed.
    pub fn set_global_percentages(
        conn: &mut PgConnection,
        appid: i64,
        names: &[String],
        percents: &[Option<f64>],
    ) -> QueryResult<usize> {
        // Steam's list is the whole truth: an achievement it leaves out (or
        // gives no usable value for) has no percentage, not last week's.
        let changed = diesel::sql_query(
            "UPDATE game_achievements ga SET global_percent = v.p
             FROM (SELECT ga2.id, p.p FROM game_achievements ga2
                   LEFT JOIN (SELECT DISTINCT ON (name) name, p
                              FROM unnest($2::text[], $3::float8[]) AS t(name, p)
                              ORDER BY name, p NULLS LAST) p ON p.name = ga2.api_name
                   WHERE ga2.appid = $1) v
             WHERE ga.id = v.id AND ga.global_percent IS DISTINCT FROM v.p",
        )
        .bind::<BigInt, _>(appid)
        .bind::<Array<Text>, _>(names)
        .bind::<Array<diesel::sql_types::Nullable<diesel::sql_types::Double>>, _>(percents)
        .execute(conn)?;
        diesel::update(games::table.find(appid))
            .set(games::global_percentages_fetched_at.eq(Utc::now()))
            .execute(conn)?;
        Ok(changed)
    }

    /// Adds the definitions import run `run_id` found that Questline lacks.
    pub fn insert_imported(conn: &mut PgConnection, defs: &ImportedDefinitions<'_>, run_id: i64) -> QueryResult<usize> {
        diesel::sql_query(
            "INSERT INTO game_achievements (id, appid, api_name, display_name, description, import_run_id)
             SELECT coalesce(($6::bigint[])[t.ord], nextval('game_achievements_id_seq')), a, k, n, NULLIF(d, ''), $5
             FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(a, k, n, d, ord)
             -- Only the missing ones draw an id: a re-run uses up none.
             WHERE NOT EXISTS (SELECT 1 FROM game_achievements ga WHERE ga.appid = t.a AND ga.api_name = t.k)
             ON CONFLICT (appid, api_name) DO NOTHING",
        )
        .bind::<Array<BigInt>, _>(defs.appids)
        .bind::<Array<Text>, _>(defs.api_names)
        .bind::<Array<Text>, _>(defs.names)
        .bind::<Array<Text>, _>(defs.descriptions)
        .bind::<BigInt, _>(run_id)
        .bind::<Array<BigInt>, _>(defs.ids)
        .execute(conn)
    }

    /// Every definition's id for these games.
    pub fn ids_of(conn: &mut PgConnection, appids: &[i64]) -> QueryResult<Vec<DefinitionId>> {
        diesel::sql_query("SELECT appid, api_name, id FROM game_achievements WHERE appid = ANY($1)")
            .bind::<Array<BigInt>, _>(appids)
            .load(conn)
    }

    /// Removes the definitions import run `run_id` added that nobody unlocked.
    pub fn delete_imported(conn: &mut PgConnection, run_id: i64) -> QueryResult<usize> {
        diesel::sql_query(
            "DELETE FROM game_achievements ga WHERE ga.import_run_id = $1
               AND NOT EXISTS (SELECT 1 FROM user_achievements ua WHERE ua.achievement_id = ga.id)
               AND NOT EXISTS (SELECT 1 FROM removed_unlocks ru WHERE ru.achievement_id = ga.id)",
        )
        .bind::<BigInt, _>(run_id)
        .execute(conn)
    }
}

/// A game or achievement name for the goal export, or `None` when this
/// instance does not know it.
pub fn game_names(conn: &mut PgConnection, appids: &[i64]) -> QueryResult<HashMap<i64, String>> {
    Ok(games::table
        .filter(games::appid.eq_any(appids))
        .select((games::appid, games::name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect())
}

/// The display names of these achievements that this instance knows.
pub fn achievement_names(
    conn: &mut PgConnection,
    wanted: &[(i64, String)],
) -> QueryResult<HashMap<(i64, String), String>> {
    let appids: Vec<i64> = wanted.iter().map(|(a, _)| *a).collect();
    Ok(game_achievements::table
        .filter(game_achievements::appid.eq_any(&appids))
        .select((game_achievements::appid, game_achievements::api_name, game_achievements::display_name))
        .load::<(i64, String, String)>(conn)?
        .into_iter()
        .filter(|(a, n, _)| wanted.iter().any(|(wa, wn)| wa == a && wn == n))
        .map(|(a, n, d)| ((a, n), d))
        .collect())
}

/// A game as a goal's page lists it.
#[derive(Debug, Clone, Queryable)]
pub struct NamedGame {
    pub appid: i64,
    pub name: String,
    pub icon_hash: Option<String>,
}

/// The games this instance knows among `appids`, by name.
pub fn named_games(conn: &mut PgConnection, appids: &[i64]) -> QueryResult<Vec<NamedGame>> {
    games::table
        .filter(games::appid.eq_any(appids))
        .order(games::name)
        .select((games::appid, games::name, games::icon_hash))
        .load(conn)
}

/// An achievement as a goal's page lists it.
#[derive(Debug, Clone, Queryable)]
pub struct NamedAchievement {
    pub appid: i64,
    pub api_name: String,
    pub name: String,
    pub hidden: bool,
    pub icon_url: Option<String>,
    pub global_percent: Option<f64>,
}

/// The achievements this instance knows among `wanted`.
pub fn named_achievements(conn: &mut PgConnection, wanted: &[(i64, String)]) -> QueryResult<Vec<NamedAchievement>> {
    let appids: Vec<i64> = wanted.iter().map(|(a, _)| *a).collect();
    let rows: Vec<NamedAchievement> = game_achievements::table
        .filter(game_achievements::appid.eq_any(&appids))
        .order((game_achievements::appid, game_achievements::id))
        .select((
            game_achievements::appid,
            game_achievements::api_name,
            game_achievements::display_name,
            game_achievements::hidden,
            game_achievements::icon_url,
            game_achievements::global_percent,
        ))
        .load(conn)?;
    Ok(rows.into_iter().filter(|r| wanted.iter().any(|(a, n)| *a == r.appid && *n == r.api_name)).collect())
}
