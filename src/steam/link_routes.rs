//! The Steam settings page: the linked account (proven by signing in
//! through Steam, see `steam::sign_in_routes`), the user's own Web API key if
//! they want one, starting a sync and watching it live (server-sent events).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::audit::RequestMeta;
use crate::auth::extractors::CurrentUser;
use crate::db;
use crate::error::{AppError, Outcome};
use crate::jobs::model::{self as jobs, Job};
use crate::jobs::STEAM_SYNC;
use crate::layout::PageContext;
use crate::models::library::{unsynced_count, unsynced_games, RemovedGame, UnsyncedGame};
use crate::ratelimit::{self, Limit};
use crate::response::{render, render_status, see_other};
use crate::state::AppState;
use crate::steam::link;
use crate::steam::model::SteamAccount;

/// "Sync now" at most this often per user.
const SYNC_NOW_EVERY: Duration = Duration::from_secs(300);
/// Progress streams open at once per user, per instance.
const STREAMS_PER_USER: usize = 3;
/// One event every half second, for at most ten minutes.
const STREAM_TICK: Duration = Duration::from_millis(500);
const STREAM_MAX_EVENTS: u32 = 1200;

#[derive(Template)]
#[template(path = "steam/settings.html")]
struct SettingsPage {
    ctx: PageContext,
    state: SyncState,
    error: Option<String>,
}

/// What the page shows of the account and its syncs.
struct SyncState {
    account: Option<SteamAccount>,
    job: Option<Job>,
    /// Games whose last fetch failed (the first 50), each with why and when
    /// it is retried, and how many there are in all.
    unsynced: Vec<UnsyncedGame>,
    unsynced_total: i64,
    /// Games that left the library (the latest 50), and how many in all.
    removed: Vec<RemovedGame>,
    removed_total: i64,
    /// The instance lends its own key to users without one.
    instance_key: bool,
}

impl SettingsPage {
    /// The account, when a SteamID is linked (a row may hold only a key).
    fn linked(&self) -> Option<&SteamAccount> {
        self.state.account.as_ref().filter(|a| a.is_linked())
    }

    /// The end of the user's own key, when they stored one.
    fn key_last4(&self) -> Option<&str> {
        self.state.account.as_ref().and_then(|a| a.api_key_last4.as_deref())
    }

    /// A sync is waiting or running.
    fn syncing(&self) -> bool {
        self.state.job.as_ref().is_some_and(|j| !j.status.is_over())
    }

    /// A job's status in words.
    fn status_words(&self, status: &str) -> &'static str {
        match status {
            "queued" => "Waiting to start",
            "running" => "Syncing",
            "done" => "Sync finished",
            _ => "Sync failed",
        }
    }
}

async fn load(state: &AppState, user_id: i64) -> Result<SyncState, AppError> {
    let settings = state.settings.clone();
    db::run(&state.pool, move |conn| {
        let (removed, removed_total) = crate::models::library::removed_games(conn, user_id, 50)?;
        Ok(SyncState {
            instance_key: crate::steam::instance_key::info(conn, &settings)?.is_some(),
            account: SteamAccount::find(conn, user_id)?,
            job: jobs::latest(conn, STEAM_SYNC, user_id)?,
            unsynced: unsynced_games(conn, user_id)?,
            unsynced_total: unsynced_count(conn, user_id)?,
            removed,
            removed_total,
        })
    })
    .await
}

async fn show(ctx: PageContext, current: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let sync = load(&state, current.user.id).await?;
    render(&SettingsPage { ctx, state: sync, error: None })
}

#[derive(Deserialize)]
pub struct KeyForm {
    api_key: SecretString,
}

/// Stores the user's own Web API key, once Steam takes it.
async fn set_key(
    ctx: PageContext,
    current: CurrentUser,
    form: web::Form<KeyForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let user_id = current.user.id;
    match link::set_own_key(&state, user_id, &form.api_key, &meta).await? {
        Outcome::Done(()) => {
            FlashMessage::success("Your Web API key is saved; syncs use it from now on.").send();
            Ok(see_other("/settings/steam"))
        }
        Outcome::Refused(error) => {
            let sync = load(&state, user_id).await?;
            render_status(StatusCode::UNPROCESSABLE_ENTITY, &SettingsPage { ctx, state: sync, error: Some(error) })
        }
    }
}

async fn remove_key(
    current: CurrentUser,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    link::clear_own_key(&state, current.user.id, &meta).await?;
    FlashMessage::info("Your Web API key is removed.").send();
    Ok(see_other("/settings/steam"))
}

/// Queues a sync for the signed-in user, at most once per
/// [`SYNC_NOW_EVERY`]; `everything` first marks every game for fetching.
async fn start_sync(current: CurrentUser, state: &AppState, everything: bool) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let redis = &state.redis;
    let signal = &state.jobs;
    let user_id = current.user.id;
    let limit = Limit { name: "sync_now", max: 1, window: SYNC_NOW_EVERY };
    if let Err(AppError::TooManyRequests { retry_after_secs }) =
        ratelimit::hit(redis, limit, &user_id.to_string()).await
    {
        FlashMessage::warning(format!(
            "A sync was started recently. You can start another in {} minute(s).",
            retry_after_secs.div_ceil(60)
        ))
        .send();
        return Ok(see_other("/settings/steam"));
    }
    let queued = link::queue_sync(pool, user_id, everything).await?;
    match (queued, everything) {
        (None, _) => FlashMessage::error("Link a Steam account first.").send(),
        (Some(true), false) => {
            signal.notify();
            FlashMessage::success("Sync started.").send()
        }
        (Some(true), true) => {
            signal.notify();
            FlashMessage::success("Full resync started: every game's achievements are fetched again.").send()
        }
        (Some(false), false) => FlashMessage::info("A sync is already running.").send(),
        (Some(false), true) => FlashMessage::info(
            "A sync is already running; every game is fetched again when it reaches them, or by the next sync.",
        )
        .send(),
    }
    Ok(see_other("/settings/steam"))
}

async fn sync_now(current: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    start_sync(current, &state, false).await
}

/// "Resync everything": every game's achievements are fetched again, not
/// only those whose playtime moved.
async fn resync_all(current: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    start_sync(current, &state, true).await
}

#[derive(Template)]
#[template(path = "steam/unlink.html")]
struct UnlinkPage {
    ctx: PageContext,
    persona: String,
    games: i64,
}

/// Asks first: unlinking deletes the synced library.
async fn unlink_confirm(
    req: actix_web::HttpRequest,
    ctx: PageContext,
    current: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    // Unlinking takes away a way to sign in and the library: sudo mode,
    // as linking needs.
    crate::auth::reauth::require_recent_auth(&req, "/settings/steam/unlink")?;
    let user_id = current.user.id;
    let found = db::run(&state.pool, move |conn| {
        let Some(account) = SteamAccount::find(conn, user_id)? else { return Ok(None) };
        Ok(Some((account, crate::models::library::count_for(conn, user_id)?)))
    })
    .await?;
    let Some((account, games)) = found else { return Ok(see_other("/settings/steam")) };
    let persona = account.persona_name.unwrap_or_else(|| "your Steam account".into());
    render(&UnlinkPage { ctx, persona, games })
}

async fn unlink(
    req: actix_web::HttpRequest,
    current: CurrentUser,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    crate::auth::reauth::require_recent_auth(&req, "/settings/steam/unlink")?;
    let Some(games) = link::unlink(&state, current.user.id, &meta).await? else {
        FlashMessage::warning(
            "Set a password first (Account → Password): you sign in through Steam, so without a password you could not sign in once it is unlinked.",
        )
        .send();
        return Ok(see_other("/settings/steam"));
    };
    FlashMessage::info(format!(
        "Your Steam account is unlinked and its library ({games} game(s)) is deleted. Your goals stay."
    ))
    .send();
    Ok(see_other("/settings/steam"))
}

/// Progress as the page's script reads it.
#[derive(Serialize)]
struct Progress {
    status: String,
    done: i32,
    total: i32,
    error: Option<String>,
}

/// Server-sent events with the sync's progress until it ends. Authenticated
/// by the session like any page; at most three streams per user and ten
/// minutes per stream.
async fn progress_stream(current: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let counter = &state.streams;
    let user_id = current.user.id;
    let Some(guard) = counter.open(user_id, STREAMS_PER_USER) else {
        return Err(AppError::TooManyRequests { retry_after_secs: 5 });
    };
    let pool = pool.clone();
    let stream =
        futures_util::stream::unfold((pool, guard, 0u32, false), move |(pool, guard, sent, finished)| async move {
            if finished || sent >= STREAM_MAX_EVENTS {
                return None;
            }
            if sent > 0 {
                tokio::time::sleep(STREAM_TICK).await;
            }
            let job = db::run(&pool, move |conn| Ok(jobs::latest(conn, STEAM_SYNC, user_id)?)).await.ok().flatten();
            let p = match job {
                Some(j) => Progress {
                    status: j.status.as_str().to_owned(),
                    done: j.progress_done,
                    total: j.progress_total,
                    error: j.last_error,
                },
                None => Progress { status: "none".into(), done: 0, total: 0, error: None },
            };
            let over = matches!(p.status.as_str(), "done" | "failed" | "none");
            let line = format!("event: progress\ndata: {}\n\n", serde_json::to_string(&p).unwrap_or_default());
            Some((Ok::<_, actix_web::Error>(web::Bytes::from(line)), (pool, guard, sent + 1, over)))
        });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-store"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(stream))
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/settings/steam").route(web::get().to(show)))
        .service(web::resource("/settings/steam/key").route(web::post().to(set_key)))
        .service(web::resource("/settings/steam/key/remove").route(web::post().to(remove_key)))
        .service(web::resource("/settings/steam/sync").route(web::post().to(sync_now)))
        .service(web::resource("/settings/steam/resync-all").route(web::post().to(resync_all)))
        .service(
            web::resource("/settings/steam/unlink").route(web::get().to(unlink_confirm)).route(web::post().to(unlink)),
        )
        .service(web::resource("/settings/steam/progress").route(web::get().to(progress_stream)));
}
