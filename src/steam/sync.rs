//! Syncing one user's library and achievements from Steam.
//!
//! Incremental: only games whose playtime changed, or that were never
//! synced, have their achievements fetched again. Schemas and global
//! percentages are cached per game and shared by every user. Each game is
//! written in its own transaction, so a crash or restart loses no finished
//! work: the retried job skips what is already done.

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Text};
use diesel::upsert::excluded;
use futures_util::StreamExt;
use secrecy::SecretString;

use super::account::SteamAccount;
use super::client::{OwnedGame, SteamError};
use crate::jobs::worker::JobContext;
use crate::jobs::{self, Job};
use crate::models::game::{Game, GameAchievement, NewGame, NewGameAchievement};
use crate::schema::{game_achievements, games, library_entries, user_achievements};

/// Games fetched at once; Steam's own limits make more pointless.
const CONCURRENCY: usize = 4;
/// Schemas older than this are fetched again.
const SCHEMA_MAX_AGE_DAYS: i64 = 7;
const CHUNK: usize = 1000;

/// A failed sync, with whether trying again later may help.
#[derive(Debug)]
pub struct SyncError {
    pub message: String,
    pub retry: bool,
}

impl SyncError {
    pub fn fatal(message: impl Into<String>) -> Self {
        SyncError { message: message.into(), retry: false }
    }
}

impl From<SteamError> for SyncError {
    fn from(e: SteamError) -> Self {
        SyncError { retry: e.is_transient(), message: e.to_string() }
    }
}

impl From<anyhow::Error> for SyncError {
    fn from(e: anyhow::Error) -> Self {
        SyncError { message: format!("internal error: {e}"), retry: true }
    }
}

async fn blocking<T: Send + 'static>(
    ctx: &JobContext,
    f: impl FnOnce(&mut PgConnection) -> QueryResult<T> + Send + 'static,
) -> Result<T, SyncError> {
    crate::db::blocking(&ctx.pool, f).await.map_err(SyncError::from)
}

/// Runs a `steam_sync` job.
pub async fn run(ctx: &JobContext, job: &Job) -> Result<(), SyncError> {
    let user_id = job.user_id.ok_or_else(|| SyncError::fatal("sync job without a user"))?;
    let result = sync_user(ctx, job, user_id).await;
    let error = result.as_ref().err().map(|e| e.message.clone());
    blocking(ctx, move |conn| {
        SteamAccount::record_sync(conn, user_id, error.as_deref())?;
        // Even a sync that stopped part-way changed some numbers.
        crate::achievements::evaluate(conn, &[user_id]).map(|_| ())
    })
    .await?;
    result
}

async fn sync_user(ctx: &JobContext, job: &Job, user_id: i64) -> Result<(), SyncError> {
    let Some(account) = blocking(ctx, move |conn| SteamAccount::find(conn, user_id)).await? else {
        return Err(SyncError::fatal("No Steam account is linked."));
    };
    let key = account.api_key(&ctx.cipher).map_err(|e| SyncError::fatal(e.to_string()))?;
    let (Some(key), Some(steam_id)) = (key, account.steam_id) else {
        return Err(SyncError::fatal(
            "Finish linking your Steam account on the Steam page: a profile and a key are both needed.",
        ));
    };
    let steam_id = steam_id as u64;

    let owned = ctx.steam.owned_games(&key, steam_id).await?;
    let todo = blocking(ctx, move |conn| store_library(conn, user_id, &owned)).await?;
    let total = todo.len() as i32;
    let job_id = job.id;
    blocking(ctx, move |conn| jobs::progress(conn, job_id, 0, total)).await?;

    let mut done = 0;
    let mut stream = futures_util::stream::iter(todo)
        .map(|(appid, schema_stale)| sync_game(ctx, &key, steam_id, user_id, appid, schema_stale))
        .buffer_unordered(CONCURRENCY);
    while let Some(result) = stream.next().await {
        result?;
        done += 1;
        if done % 10 == 0 || done == total {
            blocking(ctx, move |conn| jobs::progress(conn, job_id, done, total)).await?;
        }
    }
    Ok(())
}

/// Writes the owned-games list and returns the games whose achievements
/// need fetching, each with whether its cached schema is missing or stale.
fn store_library(conn: &mut PgConnection, user_id: i64, owned: &[OwnedGame]) -> QueryResult<Vec<(i64, bool)>> {
    conn.transaction(|conn| {
        let before: HashMap<i64, (i32, Option<DateTime<Utc>>)> = library_entries::table
            .filter(library_entries::user_id.eq(user_id))
            .select((
                library_entries::appid,
                library_entries::playtime_minutes,
                library_entries::achievements_synced_at,
            ))
            .load::<(i64, i32, Option<DateTime<Utc>>)>(conn)?
            .into_iter()
            .map(|(a, p, s)| (a, (p, s)))
            .collect();
        for chunk in owned.chunks(CHUNK) {
            let rows: Vec<NewGame> = chunk
                .iter()
                .map(|g| NewGame {
                    appid: g.appid,
                    name: if g.name.is_empty() { "Unknown game" } else { &g.name },
                    icon_hash: g.img_icon_url.as_deref().filter(|s| !s.is_empty()),
                })
                .collect();
            Game::upsert_many(conn, &rows)?;
            let entries: Vec<_> = chunk
                .iter()
                .map(|g| {
                    (
                        library_entries::user_id.eq(user_id),
                        library_entries::appid.eq(g.appid),
                        library_entries::playtime_minutes.eq(g.playtime_forever.max(0)),
                        library_entries::playtime_2weeks_minutes.eq(g.playtime_2weeks.max(0)),
                        library_entries::last_played_at.eq(unix(g.rtime_last_played)),
                    )
                })
                .collect();
            diesel::insert_into(library_entries::table)
                .values(&entries)
                .on_conflict((library_entries::user_id, library_entries::appid))
                .do_update()
                .set((
                    library_entries::playtime_minutes.eq(excluded(library_entries::playtime_minutes)),
                    library_entries::playtime_2weeks_minutes.eq(excluded(library_entries::playtime_2weeks_minutes)),
                    library_entries::last_played_at.eq(excluded(library_entries::last_played_at)),
                ))
                .execute(conn)?;
        }
        let needing: Vec<i64> = owned
            .iter()
            .filter(|g| g.has_community_visible_stats != Some(false))
            .filter(|g| match before.get(&g.appid) {
                Some((playtime, Some(_))) => *playtime != g.playtime_forever,
                _ => true,
            })
            .map(|g| g.appid)
            .collect();
        let fetched: HashMap<i64, Option<DateTime<Utc>>> = games::table
            .filter(games::appid.eq_any(&needing))
            .select((games::appid, games::schema_fetched_at))
            .load::<(i64, Option<DateTime<Utc>>)>(conn)?
            .into_iter()
            .collect();
        let fresh_after = Utc::now() - Duration::days(SCHEMA_MAX_AGE_DAYS);
        Ok(needing
            .into_iter()
            .map(|a| (a, !fetched.get(&a).copied().flatten().is_some_and(|t| t > fresh_after)))
            .collect())
    })
}

fn unix(secs: i64) -> Option<DateTime<Utc>> {
    (secs > 0).then(|| Utc.timestamp_opt(secs, 0).single()).flatten()
}

async fn sync_game(
    ctx: &JobContext,
    key: &SecretString,
    steam_id: u64,
    user_id: i64,
    appid: i64,
    schema_stale: bool,
) -> Result<(), SyncError> {
    if schema_stale {
        let schema = match ctx.steam.schema(key, appid).await {
            Ok(s) => s,
            Err(SteamError::NoStats) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        // Percentages are a nicety: a game without them still syncs.
        let globals = if schema.is_empty() {
            Vec::new()
        } else {
            ctx.steam.global_percentages(key, appid).await.unwrap_or_default()
        };
        blocking(ctx, move |conn| {
            conn.transaction(|conn| {
                let rows: Vec<NewGameAchievement> = schema
                    .iter()
                    .map(|a| NewGameAchievement {
                        appid,
                        api_name: &a.name,
                        display_name: if a.display_name.is_empty() { &a.name } else { &a.display_name },
                        description: a.description.as_deref().filter(|d| !d.is_empty()),
                        hidden: a.hidden,
                        icon_url: a.icon.as_deref(),
                        icon_gray_url: a.icongray.as_deref(),
                    })
                    .collect();
                GameAchievement::replace_schema(conn, appid, &rows)?;
                if !globals.is_empty() {
                    let names: Vec<String> = globals.iter().map(|g| g.name.clone()).collect();
                    let pcts: Vec<f64> = globals.iter().map(|g| g.percent.clamp(0.0, 100.0)).collect();
                    diesel::sql_query(
                        "UPDATE game_achievements ga SET global_percent = v.p
                         FROM (SELECT unnest($2::text[]) AS name, unnest($3::float8[]) AS p) v
                         WHERE ga.appid = $1 AND ga.api_name = v.name",
                    )
                    .bind::<BigInt, _>(appid)
                    .bind::<Array<Text>, _>(names)
                    .bind::<Array<Double>, _>(pcts)
                    .execute(conn)?;
                    diesel::update(games::table.find(appid))
                        .set(games::global_percentages_fetched_at.eq(Utc::now()))
                        .execute(conn)?;
                }
                Ok(())
            })
        })
        .await?;
    }
    let unlocked: Vec<(String, Option<DateTime<Utc>>)> = match ctx.steam.player_achievements(key, steam_id, appid).await
    {
        Ok(list) => list.into_iter().filter(|a| a.achieved).map(|a| (a.apiname, unix(a.unlocktime))).collect(),
        Err(SteamError::NoStats) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    blocking(ctx, move |conn| store_unlocks(conn, user_id, appid, &unlocked)).await
}

/// Replaces the user's unlocks in one game and refreshes the library entry's
/// cached count, in one transaction.
fn store_unlocks(
    conn: &mut PgConnection,
    user_id: i64,
    appid: i64,
    unlocked: &[(String, Option<DateTime<Utc>>)],
) -> QueryResult<()> {
    conn.transaction(|conn| {
        let ids: HashMap<String, i64> = game_achievements::table
            .filter(game_achievements::appid.eq(appid))
            .select((game_achievements::api_name, game_achievements::id))
            .load::<(String, i64)>(conn)?
            .into_iter()
            .collect();
        let all_ids: Vec<i64> = ids.values().copied().collect();
        diesel::delete(
            user_achievements::table
                .filter(user_achievements::user_id.eq(user_id))
                .filter(user_achievements::achievement_id.eq_any(&all_ids)),
        )
        .execute(conn)?;
        let rows: Vec<_> = unlocked
            .iter()
            .filter_map(|(name, at)| {
                ids.get(name).map(|id| {
                    (
                        user_achievements::user_id.eq(user_id),
                        user_achievements::achievement_id.eq(*id),
                        user_achievements::unlocked_at.eq(*at),
                    )
                })
            })
            .collect();
        for chunk in rows.chunks(CHUNK) {
            diesel::insert_into(user_achievements::table).values(chunk).execute(conn)?;
        }
        let last = unlocked.iter().filter_map(|(_, t)| *t).max();
        diesel::update(library_entries::table.find((user_id, appid)))
            .set((
                library_entries::unlocked_count.eq(rows.len() as i32),
                library_entries::last_unlock_at.eq(last),
                library_entries::achievements_synced_at.eq(Utc::now()),
            ))
            .execute(conn)?;
        Ok(())
    })
}
