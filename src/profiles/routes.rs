//! The pages: a public profile, comparing with it, the leaderboards, the
//! profile and notices settings, and the digest's unsubscribe page.

use actix_web::{web, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use serde::Deserialize;

use super::model::{self, Board, Preferences, PublicUser, Standing};
use super::Profile;
use crate::audit::{AuditEvent, RequestMeta};
use crate::auth::extractors::{CurrentUser, MaybeUser};
use crate::db;
use crate::error::AppError;
use crate::layout::PageContext;
use crate::models::history::CommonGame;
use crate::models::library::icon_url;
use crate::response::{render, see_other};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "profiles/profile.html")]
struct ProfilePage {
    ctx: PageContext,
    p: Profile,
    /// The signed-in viewer, when it is somebody else: they may compare.
    can_compare: bool,
    /// The owner is looking at their own profile.
    is_own: bool,
    media: url::Url,
    /// This page's absolute address, for link previews.
    url: String,
    /// The page of goals shown, of how many.
    page: i64,
    pages: i64,
}

impl ProfilePage {
    fn description(&self) -> String {
        match (&self.p.score, &self.p.totals) {
            (Some(s), Some(t)) => format!(
                "{} points · {} achievements · {} perfect games · {} games on Questline",
                s.points, s.unlocked, s.perfect, t.games
            ),
            _ => format!("{}'s achievements on Questline", self.p.user.username),
        }
    }

    fn icon(&self, appid: &i64, hash: &Option<String>) -> Option<String> {
        hash.as_ref().map(|h| icon_url(&self.media, *appid, h))
    }

    fn hours(minutes: &i64) -> String {
        format!("{:.0}", *minutes as f64 / 60.0)
    }

    fn goal_total(&self) -> i64 {
        self.p.goals.as_ref().map_or(0, |(_, total)| *total)
    }

    fn page_link(&self, page: &i64) -> String {
        format!("/u/{}?page={page}#profile-goals", self.p.user.username)
    }
}

async fn profile(
    ctx: PageContext,
    viewer: MaybeUser,
    username: web::Path<String>,
    // The page of goals.
    query: web::Query<crate::pagination::PageQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let viewer_id = viewer.id();
    let name = username.into_inner();
    // No username is this long (new ones stop at 32 characters, imported
    // ones well before this): refused before it names a cache entry.
    if name.chars().count() > 200 {
        return Err(AppError::NotFound);
    }
    let page = query.number();
    // Kept like any page: every anonymous visitor shares one copy, which
    // the owner's privacy choices (the shared version) replace at once.
    let key = viewer
        .view_key(&state, "profile", format!("{}\u{1f}{page}", crate::names::key(&name)))
        .await?
        .kept_if(page <= crate::views::KEPT_PAGES);
    let p = state.views.load(&state.reads, key, move |conn| super::view(conn, &name, viewer_id, page)).await?;
    let can_compare = viewer_id.is_some_and(|v| v != p.user.id) && p.library.is_some() && p.user.steam_verified;
    let base = state.settings.public_base_url.as_str().trim_end_matches('/');
    let url = format!("{base}/u/{}", p.user.username);
    let pages = crate::pagination::page_count(p.goals.as_ref().map_or(0, |(_, total)| *total), super::PROFILE_GOALS);
    let media = state.settings.steam_media_url.clone();
    let is_own = viewer_id == Some(p.user.id);
    render(&ProfilePage { ctx, p, can_compare, is_own, media, url, page, pages })
}

#[derive(Template)]
#[template(path = "profiles/compare.html")]
struct ComparePage {
    ctx: PageContext,
    them: PublicUser,
    games: Vec<CommonGame>,
    total: i64,
    media: url::Url,
}

impl ComparePage {
    fn icon(&self, g: &CommonGame) -> Option<String> {
        g.icon_hash.as_ref().map(|h| icon_url(&self.media, g.appid, h))
    }
    fn hours(minutes: &i32) -> String {
        format!("{:.1}", *minutes as f64 / 60.0)
    }
    fn percent(unlocked: &i32, total: &i32) -> i32 {
        if *total == 0 {
            0
        } else {
            (*unlocked as f64 * 100.0 / *total as f64).floor() as i32
        }
    }
}

async fn compare(
    ctx: PageContext,
    current: CurrentUser,
    username: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (name, me) = (username.into_inner(), current.user.id);
    let (them, games, total) = db::run(&state.pool, move |conn| super::compare(conn, &name, me)).await?;
    if them.id == me {
        return Ok(see_other(&format!("/u/{}", them.username)));
    }
    render(&ComparePage { ctx, them, games, total, media: state.settings.steam_media_url.clone() })
}

#[derive(Deserialize)]
struct BoardQuery {
    by: Option<String>,
}

#[derive(Template)]
#[template(path = "profiles/leaderboards.html")]
struct LeaderboardPage {
    ctx: PageContext,
    board: Board,
    boards: [Board; 3],
    top: Vec<Standing>,
    own: Option<Standing>,
    signed_in: bool,
}

impl LeaderboardPage {
    fn value(&self, s: &Standing) -> i64 {
        match self.board {
            Board::Points => s.points,
            Board::Perfect => s.perfect,
            Board::Unlocked => s.unlocked,
        }
    }
}

/// Lines on a leaderboard.
const BOARD_SIZE: i64 = 100;

async fn leaderboards(
    ctx: PageContext,
    viewer: MaybeUser,
    query: web::Query<BoardQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let board = Board::parse(query.by.as_deref());
    let viewer_id = viewer.id();
    let key = viewer.view_key(&state, "leaderboards", board.key()).await?;
    let (top, own) = state
        .views
        .load(&state.reads, key, move |conn| Ok(model::leaderboard(conn, board, BOARD_SIZE, viewer_id)?))
        .await?;
    render(&LeaderboardPage {
        ctx,
        board,
        boards: [Board::Points, Board::Perfect, Board::Unlocked],
        top,
        own,
        signed_in: viewer_id.is_some(),
    })
}

#[derive(Template)]
#[template(path = "profiles/settings.html")]
struct SettingsPage {
    ctx: PageContext,
    username: String,
    prefs: Preferences,
    has_email: bool,
}

async fn settings(
    ctx: PageContext,
    current: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let id = current.user.id;
    let prefs = db::run(&state.pool, move |conn| Ok(model::of(conn, id)?)).await?;
    let has_email = current.user.email.is_some() && current.user.email_verified_at.is_some();
    render(&SettingsPage { ctx, username: current.user.username, prefs, has_email })
}

/// Checkboxes: present means ticked.
#[derive(Deserialize)]
struct SettingsForm {
    profile_public: Option<String>,
    show_stats: Option<String>,
    show_perfect: Option<String>,
    show_library: Option<String>,
    show_goals: Option<String>,
    on_leaderboard: Option<String>,
    weekly_digest: Option<String>,
}

async fn save_settings(
    current: CurrentUser,
    form: web::Form<SettingsForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let f = form.into_inner();
    let prefs = Preferences {
        profile_public: f.profile_public.is_some(),
        show_stats: f.show_stats.is_some(),
        show_perfect: f.show_perfect.is_some(),
        show_library: f.show_library.is_some(),
        show_goals: f.show_goals.is_some(),
        on_leaderboard: f.on_leaderboard.is_some(),
        weekly_digest: f.weekly_digest.is_some(),
    };
    let user = current.user;
    let (id, username) = (user.id, user.username.clone());
    let p = prefs.clone();
    db::run(&state.pool, move |conn| {
        model::save(conn, id, &p)?;
        AuditEvent::new("account", "preferences", &meta)
            .actor(id)
            .target_user(id, &username)
            .details(serde_json::json!({
                "profile_public": p.profile_public, "on_leaderboard": p.on_leaderboard, "weekly_digest": p.weekly_digest,
            }))
            .record(conn)?;
        Ok(())
    })
    .await?;
    let mut msg = String::from("Saved.");
    if prefs.profile_public {
        msg.push_str(&format!(" Your profile is public at /u/{}.", user.username));
    } else {
        msg.push_str(" Your profile is private.");
    }
    if prefs.weekly_digest && user.email_verified_at.is_none() {
        msg.push_str(" The digest starts once your email address is confirmed.");
    }
    FlashMessage::success(msg).send();
    Ok(see_other("/settings/profile"))
}

#[derive(Template)]
#[template(path = "profiles/unsubscribe.html")]
struct UnsubscribePage {
    ctx: PageContext,
    token: String,
    /// `None`: the page with the button; `Some(name)`: done.
    done: Option<String>,
}

/// The page the digest's link opens: it changes nothing, a button posts.
async fn unsubscribe_page(
    ctx: PageContext,
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let t = token.clone();
    if !db::run(&state.pool, move |conn| Ok(model::token_exists(conn, &t)?)).await? {
        return Err(AppError::NotFound);
    }
    render(&UnsubscribePage { ctx, token, done: None })
}

async fn unsubscribe(
    ctx: PageContext,
    token: web::Path<String>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let t = token.clone();
    let done = db::run(&state.pool, move |conn| {
        let name = model::unsubscribe(conn, &t)?;
        if let Some(n) = &name {
            AuditEvent::new("account", "digest_unsubscribe", &meta).target_text(n.clone()).record(conn)?;
        }
        Ok(name)
    })
    .await?
    .ok_or(AppError::NotFound)?;
    render(&UnsubscribePage { ctx, token, done: Some(done) })
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/u/{username}").route(web::get().to(profile)))
        .service(web::resource("/u/{username}/compare").route(web::get().to(compare)))
        .service(web::resource("/leaderboards").route(web::get().to(leaderboards)))
        .service(web::resource("/settings/profile").route(web::get().to(settings)).route(web::post().to(save_settings)))
        .service(
            web::resource("/unsubscribe/{token}")
                .route(web::get().to(unsubscribe_page))
                .route(web::post().to(unsubscribe)),
        );
}
