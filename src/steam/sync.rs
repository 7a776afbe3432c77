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

use crate::infra::steam_client::{ApiKey, OwnedGame, SteamError};
use crate::jobs::kind::{Backoff, Done, JobError, JobFuture, JobKind};
use crate::jobs::model::{self as jobs, Job, Lease};
use crate::jobs::STEAM_SYNC;
use crate::models::game::{Game, GameAchievement, NewGame, NewGameAchievement};
use crate::models::library::{self, EntrySyncState, OwnedEntry};
use crate::state::AppState;
use crate::steam::model::SteamAccount;

/// Games fetched at once; Steam's own limits make more pointless.
const CONCURRENCY: usize = 4;
/// Schemas older than this are fetched again.
const SCHEMA_MAX_AGE_DAYS: i64 = 7;
const CHUNK: usize = 1000;

/// A failed sync, with whether trying again later may help.
pub type SyncError = JobError;

impl From<SteamError> for JobError {
    fn from(e: SteamError) -> Self {
        JobError { retry: e.is_transient(), message: e.to_string(), not_before: e.not_before(), lost: false }
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

/// A write of this run, made only while it still holds the job (see
/// [`jobs::fenced`]): after a relink, an unlink or a takeover, the run's
/// writes are refused and it stops with [`JobError::lost`].
async fn fenced<T: Send + 'static>(
    ctx: &AppState,
    lease: Lease,
    f: impl FnOnce(&mut PgConnection) -> QueryResult<T> + Send + 'static,
) -> Result<T, SyncError> {
    blocking(ctx, move |conn| jobs::fenced(conn, lease, f)).await?.ok_or_else(JobError::lost)
}

/// Records progress while the run holds the job.
async fn progress(ctx: &AppState, lease: Lease, done: i32, total: i32) -> Result<(), SyncError> {
    if blocking(ctx, move |conn| jobs::progress(conn, lease, done, total)).await? {
        Ok(())
    } else {
        Err(JobError::lost())
    }
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

/// Runs a `steam_sync` job. Whatever it stored, totals and goals follow;
/// while any game waits for a retry, a follow-up sync is queued for the
/// earliest (so a "Sync now" that ran early never leaves one unretried).
pub async fn run(ctx: &AppState, job: &Job) -> Result<Done, SyncError> {
    let user_id = job.user_id.ok_or_else(|| JobError::fatal("sync job without a user"))?;
    let lease = job.lease();
    let result = sync_user(ctx, lease, user_id).await;
    if matches!(&result, Err(e) if e.is_lost()) {
        return Err(JobError::lost());
    }
    let error = result.as_ref().err().map(|e| e.message.clone());
    let retry_at = fenced(ctx, lease, move |conn| {
        SteamAccount::record_sync(conn, user_id, error.as_deref())?;
        // Even a sync that stopped part-way changed some numbers.
        crate::rarity::rescore_users(conn, &[user_id])?;
        crate::achievements::evaluate(conn, &[user_id])?;
        library::earliest_retry(conn, user_id)
    })
    .await?;
    match result {
        Ok(_) => Ok(Done { follow_up_at: retry_at }),
        // A private profile is a state of the link, shown on the Steam
        // page; retrying (or an admin's Retry) cannot change it.
        Err(e) if e.message == SteamError::Private.to_string() => Ok(Done::default()),
        Err(e) => Err(e),
    }
}

/// The key a sync calls Steam with: the user's own, else the instance's,
/// lent within the user's daily share.
async fn sync_key(ctx: &AppState, account: &SteamAccount) -> Result<ApiKey, SyncError> {
    if let Some(own) = account.api_key(&ctx.cipher).map_err(|e| JobError::fatal(e.to_string()))? {
        return Ok(ApiKey::own(own));
    }
    let (cipher, settings) = (ctx.cipher.clone(), ctx.settings.clone());
    let user = account.user_id;
    let shared =
        crate::db::run(&ctx.background, move |conn| super::instance_key::lent_to(conn, &cipher, &settings, user))
            .await
            .map_err(|e| JobError::transient(e.to_string()))?;
    match shared {
        Some(key) => Ok(key),
        None => Err(JobError::fatal(
            "This site has no Steam Web API key for syncing yet. Add your own key on the Steam page, \
             or ask the admin to set one.",
        )),
    }
}

/// Consecutive failures of Steam itself (timeouts, 5xx) after which a sync
/// stops: Steam is down, and every further game would only fail too.
const STEAM_DOWN_AFTER: u32 = 5;

/// Syncs the user's library; returns how many games failed (each is
/// recorded on its library entry, which the Steam page lists).
async fn sync_user(ctx: &AppState, lease: Lease, user_id: i64) -> Result<usize, SyncError> {
    let Some(account) = blocking(ctx, move |conn| SteamAccount::find(conn, user_id)).await? else {
        return Err(JobError::fatal("No Steam account is linked."));
    };
    let Some(steam_id) = account.steam_id else {
        return Err(JobError::fatal("Finish linking your Steam account: sign in through Steam on the Steam page."));
    };
    let steam_id = steam_id as u64;
    let key = sync_key(ctx, &account).await?;
    // A link made without a persona (an import, an unproven link, a proof
    // while Steam was away) learns it once.
    if account.persona_name.is_none() {
        if let Ok(p) = ctx.steam.player_summary(&key, steam_id).await {
            fenced(ctx, lease, move |conn| {
                SteamAccount::set_persona(conn, user_id, &p.personaname, p.avatarfull.as_deref())
            })
            .await?;
        }
    }

    let list = ctx.steam.owned_games(&key, steam_id).await?;
    if !list.complete {
        tracing::warn!(
            user_id,
            games = list.games.len(),
            "Steam's owned list disagrees with its own count; no game is marked removed"
        );
    }
    let (owned, complete) = (merge_owned(list.games), list.complete);
    let resync = account.resync_requested_at;
    let todo =
        fenced(ctx, lease, move |conn| store_library(conn, user_id, &owned, complete, resync, Utc::now())).await?;
    let total = todo.len() as i32;
    progress(ctx, lease, 0, total).await?;

    let mut done = 0;
    let mut failed = 0;
    let mut steam_down_streak = 0;
    let mut stream = futures_util::stream::iter(todo)
        .map(|game| async { (sync_game(ctx, &key, steam_id, user_id, lease, &game).await, game) })
        .buffer_unordered(CONCURRENCY);
    while let Some((outcome, game)) = stream.next().await {
        match outcome {
            GameOutcome::Stored => steam_down_streak = 0,
            GameOutcome::Abort(e) => return Err(e),
            GameOutcome::Failed { endpoint, error } => {
                // A malformed answer already names its endpoint.
                let message = match &error {
                    SteamError::Malformed(_) | SteamError::Interrupted(_) => error.to_string(),
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
                fenced(ctx, lease, move |conn| {
                    library::record_game_failure(conn, user_id, appid, &note, Utc::now(), game_backoff)
                })
                .await?;
                steam_down_streak = if error.is_transient() { steam_down_streak + 1 } else { 0 };
                failed += 1;
                if steam_down_streak >= STEAM_DOWN_AFTER {
                    return Err(JobError::transient(format!(
                        "Steam is failing ({error}); the sync stopped and will be retried."
                    )));
                }
            }
        }
        done += 1;
        if done % 10 == 0 || done == total {
            progress(ctx, lease, done, total).await?;
        }
    }
    Ok(failed)
}

/// Steam's owned list with each game once: the same app id twice (Steam
/// has sent it) is one game, with the larger playtimes and a name if
/// either had one.
fn merge_owned(list: Vec<OwnedGame>) -> Vec<OwnedGame> {
    let mut by_appid: std::collections::BTreeMap<i64, OwnedGame> = std::collections::BTreeMap::new();
    for g in list {
        by_appid
            .entry(g.appid)
            .and_modify(|kept| {
                kept.playtime_forever = kept.playtime_forever.max(g.playtime_forever);
                kept.playtime_2weeks = kept.playtime_2weeks.max(g.playtime_2weeks);
                kept.rtime_last_played = kept.rtime_last_played.max(g.rtime_last_played);
                if kept.name.is_empty() {
                    kept.name = g.name.clone();
                }
                if kept.img_icon_url.is_none() {
                    kept.img_icon_url = g.img_icon_url.clone();
                }
                kept.has_community_visible_stats = kept.has_community_visible_stats.or(g.has_community_visible_stats);
            })
            .or_insert(g);
    }
    by_appid.into_values().collect()
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
    /// This instance knows achievements for it: an empty schema from Steam
    /// is then suspect, not the truth.
    had_achievements: bool,
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
    complete: bool,
    resync_requested_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> QueryResult<Vec<GameTodo>> {
    conn.transaction(|conn| {
        let appids: Vec<i64> = owned.iter().map(|g| g.appid).collect();
        // A game that left the list and came back gets its entry again
        // before the playtimes are written.
        library::restore_returned(conn, user_id, &appids)?;
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
        // Steam no longer lists these as owned: out of every total, kept
        // aside (see the README's removal policy).
        let retired = if complete { library::retire_missing(conn, user_id, &appids)? } else { 0 };
        if retired > 0 {
            tracing::info!(user_id, games = retired, "games left the owned list");
        }
        // A game Steam says has no stats is not fetched, unless it had
        // achievements: then its schema must be read to learn they went.
        let had_achievements = Game::with_achievements(conn, &appids)?;
        let needing: Vec<&OwnedGame> = owned
            .iter()
            .filter(|g| g.has_community_visible_stats != Some(false) || had_achievements.contains(&g.appid))
            .filter(|g| before.get(&g.appid).is_none_or(|state| due(state, g.playtime_forever.max(0), now)))
            .collect();
        let needed: Vec<i64> = needing.iter().map(|g| g.appid).collect();
        // Fetched before this user's "Resync everything" is stale too.
        let week_ago = now - Duration::days(SCHEMA_MAX_AGE_DAYS);
        let older_than = resync_requested_at.map_or(week_ago, |t| t.clamp(week_ago, now));
        let stale = Game::stats_due(conn, &needed, older_than, now)?;
        Ok(needing
            .into_iter()
            .map(|g| GameTodo {
                appid: g.appid,
                name: if g.name.is_empty() { format!("App {}", g.appid) } else { g.name.clone() },
                playtime: g.playtime_forever.max(0),
                schema_stale: stale.contains(&g.appid),
                had_achievements: had_achievements.contains(&g.appid),
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
        SteamError::BadKey
        | SteamError::BudgetExhausted
        | SteamError::ShareExhausted
        | SteamError::RateLimited { .. } => GameOutcome::Abort(SyncError::from(error)),
        error => GameOutcome::Failed { endpoint, error },
    }
}

async fn sync_game(
    ctx: &AppState,
    key: &ApiKey,
    steam_id: u64,
    user_id: i64,
    lease: Lease,
    game: &GameTodo,
) -> GameOutcome {
    let appid = game.appid;
    if game.schema_stale {
        if let Err(outcome) = fetch_stats(ctx, key, game).await {
            return outcome;
        }
    }
    let unlocked: Vec<(String, Option<DateTime<Utc>>)> = match ctx.steam.player_achievements(key, steam_id, appid).await
    {
        Ok(list) => list.into_iter().filter(|a| a.achieved).map(|a| (a.apiname, unix(a.unlocktime))).collect(),
        // "No stats" for a game known to have achievements is as suspect
        // as an empty schema: the unlocks stay, and the game is retried.
        Err(SteamError::NoStats) if game.had_achievements => {
            return GameOutcome::Failed { endpoint: "GetPlayerAchievements", error: SteamError::NoStats }
        }
        Err(SteamError::NoStats) => Vec::new(),
        Err(e) => return game_error("GetPlayerAchievements", e),
    };
    // An unlock of an achievement the cached schema does not know: the
    // game gained achievements since. Its schema is fetched again now (at
    // most hourly), rather than the unlock waiting a week.
    if !game.schema_stale {
        let names: Vec<String> = unlocked.iter().map(|(n, _)| n.clone()).collect();
        match blocking(ctx, move |conn| Game::schema_misses(conn, appid, &names, Utc::now() - Duration::hours(1))).await
        {
            Ok(true) => {
                if let Err(outcome) = fetch_stats(ctx, key, game).await {
                    return outcome;
                }
            }
            Ok(false) => {}
            Err(e) => return GameOutcome::Abort(e),
        }
    }
    let playtime = game.playtime;
    match fenced(ctx, lease, move |conn| library::replace_unlocks(conn, user_id, appid, playtime, &unlocked)).await {
        Ok(_) => GameOutcome::Stored,
        Err(e) => GameOutcome::Abort(e),
    }
}

/// Fetches and stores a game's schema and global percentages (shared by
/// every user). An empty schema for a game this instance knows
/// achievements of is not believed (Steam answers `{"game":{}}` now and
/// then): it is recorded as a failure and tried again after a backoff.
async fn fetch_stats(ctx: &AppState, key: &ApiKey, game: &GameTodo) -> Result<(), GameOutcome> {
    let appid = game.appid;
    let schema = match ctx.steam.schema(key, appid).await {
        Ok(s) => s,
        Err(SteamError::NoStats) => Vec::new(),
        Err(e) => return Err(game_error("GetSchemaForGame", e)),
    };
    if schema.is_empty() && game.had_achievements {
        tracing::warn!(appid, "Steam listed no achievements for a game that has some; kept as they were");
        let note = "GetSchemaForGame: no achievements listed for a game that has some; kept until Steam lists them";
        return blocking(ctx, move |conn| Game::record_stats_failure(conn, appid, note, game_backoff))
            .await
            .map_err(GameOutcome::Abort);
    }
    // Percentages are a nicety: a game without them still syncs. A bad
    // answer is recorded on the game and fetched again after a backoff.
    let (globals, globals_error) = if schema.is_empty() {
        (Some(Vec::new()), None)
    } else {
        match ctx.steam.global_percentages(key, appid).await {
            Ok(g) => (Some(g), None),
            Err(
                e @ (SteamError::BadKey
                | SteamError::BudgetExhausted
                | SteamError::ShareExhausted
                | SteamError::RateLimited { .. }),
            ) => return Err(game_error("GetGlobalAchievementPercentagesForApp", e)),
            Err(e) => (None, Some(e)),
        }
    };
    if let Some(e) = &globals_error {
        tracing::warn!(appid, error = %e, "a game's global percentages could not be fetched");
    }
    let note = globals_error.map(|e| format!("GetGlobalAchievementPercentagesForApp: {e}"));
    blocking(ctx, move |conn| store_schema(conn, appid, &schema, globals.as_deref(), note))
        .await
        .map_err(GameOutcome::Abort)
}

/// Replaces a game's cached schema and (when they came) its global
/// percentages; `globals_error` records why they did not. When the schema
/// moved (achievements added, removed or back), every owner's counts,
/// points and perfect games follow in the same transaction.
fn store_schema(
    conn: &mut PgConnection,
    appid: i64,
    schema: &[crate::infra::steam_client::SchemaAchievement],
    globals: Option<&[crate::infra::steam_client::GlobalPercent]>,
    globals_error: Option<String>,
) -> QueryResult<()> {
    conn.transaction(|conn| {
        Game::hold_for_schema(conn, appid)?;
        let rows: Vec<NewGameAchievement> = schema
            .iter()
            .filter(|a| !a.name.is_empty())
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
        let change = GameAchievement::replace_schema(conn, appid, &rows)?;
        let percentages_moved = match (globals, globals_error) {
            (Some(globals), _) => {
                let names: Vec<String> = globals.iter().map(|g| g.name.clone()).collect();
                let pcts: Vec<Option<f64>> = globals.iter().map(|g| g.percent).collect();
                GameAchievement::set_global_percentages(conn, appid, &names, &pcts)? > 0
            }
            (None, Some(note)) => {
                Game::record_stats_failure(conn, appid, &note, game_backoff)?;
                false
            }
            (None, None) => false,
        };
        if change.moves_owners() {
            library::set_aside_unlocks(conn, &change.removed)?;
            library::restore_unlocks(conn, appid, &change.restored)?;
            // Counts, points and perfect games of every owner, at once.
            library::recount_entries(conn, None, &[appid])?;
            let owners = library::owners_of(conn, &[appid])?;
            crate::rarity::rescore_owners(conn, &[appid], &owners)?;
        } else if percentages_moved {
            // Every owner's points in this game move with the percentages.
            crate::rarity::rescore_games(conn, &[appid])?;
        }
        Ok(())
    })
}
