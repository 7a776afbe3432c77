//! Syncing one user's library and achievements from Steam.
//!
//! Every sync converges on what Steam says. A game's own state (the playtime
//! its achievements were fetched at, and when) advances only in the
//! transaction that stores its achievements, so a crash, a kill or a failed
//! answer never makes a game look current when it is not. A game is fetched
//! again when its playtime moved, when it failed before (after a backoff),
//! or when its last full check is a week old. One game's failure is recorded
//! on that game and the sync goes on with the others. Schemas and global
//! percentages are cached per game and shared by every user.

use chrono::{DateTime, Duration, TimeZone, Utc};
use diesel::prelude::*;
use futures_util::StreamExt;
use secrecy::SecretString;

use super::account::SteamAccount;
use super::client::{OwnedGame, SteamError};
use crate::jobs::kind::{Backoff, Done, JobError, JobFuture, JobKind};
use crate::jobs::model::{self as jobs, Job};
use crate::jobs::STEAM_SYNC;
use crate::models::game::{Game, GameAchievement, NewGame, NewGameAchievement};
use crate::models::library::{self, EntrySyncState, OwnedEntry};
use crate::state::AppState;

/// Games fetched at once; Steam's own limits make more pointless.
const CONCURRENCY: usize = 4;
/// Schemas older than this are fetched again.
const SCHEMA_MAX_AGE_DAYS: i64 = 7;
const CHUNK: usize = 1000;

/// A failed sync, with whether trying again later may help.
pub type SyncError = JobError;

impl From<SteamError> for JobError {
    fn from(e: SteamError) -> Self {
        JobError { retry: e.is_transient(), message: e.to_string() }
    }
}

/// The `steam_sync` job kind: fetches a user's library, playtime and
/// achievements.
pub struct SteamSyncJob;

impl JobKind for SteamSyncJob {
    fn name(&self) -> &'static str {
        STEAM_SYNC
    }

    fn backoff(&self) -> Backoff {
        Backoff { base_secs: 120, max_secs: 3840, max_attempts: 5 }
    }

    fn run<'a>(&'a self, state: &'a AppState, job: &'a Job) -> JobFuture<'a> {
        Box::pin(run(state, job))
    }
}

async fn blocking<T: Send + 'static>(
    ctx: &AppState,
    f: impl FnOnce(&mut PgConnection) -> QueryResult<T> + Send + 'static,
) -> Result<T, SyncError> {
    crate::db::blocking(&ctx.background, f).await.map_err(SyncError::from)
}

/// How one game's fetch ended.
enum GameOutcome {
    Stored,
    /// Recorded on the game; the sync goes on with the others.
    Failed {
        endpoint: &'static str,
        error: SteamError,
    },
    /// Nothing more can work in this sync (the key was refused, the budget
    /// is spent, Steam is limiting us): stop, keeping every game's state.
    Abort(SyncError),
}

/// Runs a `steam_sync` job.
pub async fn run(ctx: &AppState, job: &Job) -> Result<Done, SyncError> {
    let user_id = job.user_id.ok_or_else(|| JobError::fatal("sync job without a user"))?;
    let result = sync_user(ctx, job, user_id).await;
    let error = result.as_ref().err().map(|e| e.message.clone());
    blocking(ctx, move |conn| {
        SteamAccount::record_sync(conn, user_id, error.as_deref())?;
        // Even a sync that stopped part-way changed some numbers.
        crate::rarity::rescore_users(conn, &[user_id])?;
        crate::achievements::evaluate(conn, &[user_id]).map(|_| ())
    })
    .await?;
    let failed = match result {
        Ok(n) => n,
        // A private profile is a state of the link, shown on the Steam
        // page; retrying (or an admin's Retry) cannot change it.
        Err(e) if e.message == SteamError::Private.to_string() => return Ok(Done::default()),
        Err(e) => return Err(e),
    };
    if failed == 0 {
        return Ok(Done::default());
    }
    let retry_at = blocking(ctx, move |conn| library::earliest_retry(conn, user_id)).await?;
    // The worker queues a follow-up sync for when the earliest failed game
    // may be tried again.
    Ok(Done { follow_up_at: retry_at })
}

/// Consecutive failures of Steam itself (timeouts, 5xx) after which a sync
/// stops: Steam is down, and every further game would only fail too.
const STEAM_DOWN_AFTER: u32 = 5;

/// Syncs the user's library; returns how many games failed (each is
/// recorded on its library entry, which the Steam page lists).
async fn sync_user(ctx: &AppState, job: &Job, user_id: i64) -> Result<usize, SyncError> {
    let Some(account) = blocking(ctx, move |conn| SteamAccount::find(conn, user_id)).await? else {
        return Err(JobError::fatal("No Steam account is linked."));
    };
    let key = account.api_key(&ctx.cipher).map_err(|e| JobError::fatal(e.to_string()))?;
    let (Some(key), Some(steam_id)) = (key, account.steam_id) else {
        return Err(JobError::fatal(
            "Finish linking your Steam account on the Steam page: a profile and a key are both needed.",
        ));
    };
    let steam_id = steam_id as u64;

    let owned = ctx.steam.owned_games(&key, steam_id).await?;
    let todo = blocking(ctx, move |conn| store_library(conn, user_id, &owned, Utc::now())).await?;
    let total = todo.len() as i32;
    let job_id = job.id;
    blocking(ctx, move |conn| jobs::progress(conn, job_id, 0, total)).await?;

    let mut done = 0;
    let mut failed = 0;
    let mut steam_down_streak = 0;
    let mut stream = futures_util::stream::iter(todo)
        .map(|game| async { (sync_game(ctx, &key, steam_id, user_id, &game).await, game) })
        .buffer_unordered(CONCURRENCY);
    while let Some((outcome, game)) = stream.next().await {
        match outcome {
            GameOutcome::Stored => steam_down_streak = 0,
            GameOutcome::Abort(e) => return Err(e),
            GameOutcome::Failed { endpoint, error } => {
                // A malformed answer already names its endpoint.
                let message = match &error {
                    SteamError::Malformed(_) => error.to_string(),
                    _ => format!("{endpoint}: {error}"),
                };
                tracing::warn!(
                    user_id,
                    appid = game.appid,
                    game = %game.name,
                    endpoint,
                    error = %error,
                    "a game could not be synced"
                );
                let (appid, note) = (game.appid, message.clone());
                blocking(ctx, move |conn| {
                    library::record_game_failure(conn, user_id, appid, &note, Utc::now(), game_backoff)
                })
                .await?;
                steam_down_streak = if error.is_transient() { steam_down_streak + 1 } else { 0 };
                failed += 1;
                if steam_down_streak >= STEAM_DOWN_AFTER {
                    return Err(JobError {
                        message: format!("Steam is failing ({error}); the sync stopped and will be retried."),
                        retry: true,
                    });
                }
            }
        }
        done += 1;
        if done % 10 == 0 || done == total {
            blocking(ctx, move |conn| jobs::progress(conn, job_id, done, total)).await?;
        }
    }
    Ok(failed)
}

/// Every game's achievements are fetched again at least this often, so
/// unlocks that came without a playtime change (offline play, achievements
/// added by an update, playtime hidden by privacy settings) arrive within
/// this bound. For a 2,000-game library that is about 2,000 achievement
/// calls a week, plus schemas and percentages every week: about 900 of the
/// key's 90,000 daily calls on average.
pub const FULL_CHECK_DAYS: i64 = 7;

/// A game to fetch.
#[derive(Debug, Clone)]
struct GameTodo {
    appid: i64,
    name: String,
    /// The playtime Steam reported in this sync; stored as the game's synced
    /// playtime once its achievements are.
    playtime: i32,
    schema_stale: bool,
}

/// Whether a game is due a fetch: never stored, its playtime moved since
/// the last stored fetch, it failed (and its backoff has passed), or its
/// last full check is older than [`FULL_CHECK_DAYS`].
fn due(state: &EntrySyncState, playtime: i32, now: DateTime<Utc>) -> bool {
    if state.retry_after.is_some_and(|t| t > now) {
        return false;
    }
    state.synced_at.is_none_or(|t| t < now - Duration::days(FULL_CHECK_DAYS))
        || state.synced_playtime != Some(playtime)
        || state.failures > 0
}

/// Writes the owned-games list and returns the games whose achievements
/// need fetching. Only playtime and names are written here: a game's sync
/// state moves only when its achievements are stored.
fn store_library(
    conn: &mut PgConnection,
    user_id: i64,
    owned: &[OwnedGame],
    now: DateTime<Utc>,
) -> QueryResult<Vec<GameTodo>> {
    conn.transaction(|conn| {
        let before = library::sync_states(conn, user_id)?;
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
            let entries: Vec<OwnedEntry> = chunk
                .iter()
                .map(|g| OwnedEntry {
                    user_id,
                    appid: g.appid,
                    playtime_minutes: g.playtime_forever.max(0),
                    playtime_2weeks_minutes: g.playtime_2weeks.max(0),
                    last_played_at: unix(g.rtime_last_played),
                })
                .collect();
            library::upsert_owned(conn, &entries)?;
        }
        let needing: Vec<&OwnedGame> = owned
            .iter()
            .filter(|g| g.has_community_visible_stats != Some(false))
            .filter(|g| before.get(&g.appid).is_none_or(|state| due(state, g.playtime_forever.max(0), now)))
            .collect();
        let appids: Vec<i64> = needing.iter().map(|g| g.appid).collect();
        let fetched = Game::schema_fetched_at(conn, &appids)?;
        let fresh_after = now - Duration::days(SCHEMA_MAX_AGE_DAYS);
        Ok(needing
            .into_iter()
            .map(|g| GameTodo {
                appid: g.appid,
                name: if g.name.is_empty() { format!("App {}", g.appid) } else { g.name.clone() },
                playtime: g.playtime_forever.max(0),
                schema_stale: fetched.get(&g.appid).copied().flatten().is_none_or(|t| t <= fresh_after),
            })
            .collect())
    })
}

/// How long a game that failed `failures` times in a row waits: 15 minutes,
/// doubling, at most a day.
fn game_backoff(failures: i32) -> Duration {
    let minutes = 15_i64 << (failures - 1).clamp(0, 7);
    Duration::minutes(minutes.min(24 * 60))
}

fn unix(secs: i64) -> Option<DateTime<Utc>> {
    (secs > 0).then(|| Utc.timestamp_opt(secs, 0).single()).flatten()
}

/// Classifies a Steam error met while fetching one game.
fn game_error(endpoint: &'static str, error: SteamError) -> GameOutcome {
    match error {
        SteamError::BadKey | SteamError::BudgetExhausted | SteamError::RateLimited => {
            GameOutcome::Abort(SyncError::from(error))
        }
        error => GameOutcome::Failed { endpoint, error },
    }
}

async fn sync_game(ctx: &AppState, key: &SecretString, steam_id: u64, user_id: i64, game: &GameTodo) -> GameOutcome {
    let appid = game.appid;
    if game.schema_stale {
        let schema = match ctx.steam.schema(key, appid).await {
            Ok(s) => s,
            Err(SteamError::NoStats) => Vec::new(),
            Err(e) => return game_error("GetSchemaForGame", e),
        };
        // Percentages are a nicety: a game without them still syncs.
        let globals = if schema.is_empty() {
            Vec::new()
        } else {
            ctx.steam.global_percentages(key, appid).await.unwrap_or_default()
        };
        if let Err(e) = blocking(ctx, move |conn| store_schema(conn, appid, &schema, &globals)).await {
            return GameOutcome::Abort(e);
        }
    }
    let unlocked: Vec<(String, Option<DateTime<Utc>>)> = match ctx.steam.player_achievements(key, steam_id, appid).await
    {
        Ok(list) => list.into_iter().filter(|a| a.achieved).map(|a| (a.apiname, unix(a.unlocktime))).collect(),
        Err(SteamError::NoStats) => Vec::new(),
        Err(e) => return game_error("GetPlayerAchievements", e),
    };
    let playtime = game.playtime;
    match blocking(ctx, move |conn| library::replace_unlocks(conn, user_id, appid, playtime, &unlocked)).await {
        Ok(()) => GameOutcome::Stored,
        Err(e) => GameOutcome::Abort(e),
    }
}

/// Replaces a game's cached schema and global percentages.
fn store_schema(
    conn: &mut PgConnection,
    appid: i64,
    schema: &[super::client::SchemaAchievement],
    globals: &[super::client::GlobalPercent],
) -> QueryResult<()> {
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
            if GameAchievement::set_global_percentages(conn, appid, &names, &pcts)? > 0 {
                // Every owner's points in this game move with the percentages.
                crate::rarity::rescore_games(conn, &[appid])?;
            }
        }
        Ok(())
    })
}
