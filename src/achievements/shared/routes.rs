//! The community list, importing from it, and sharing into it.

use actix_web::{web, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use serde::Deserialize;

use super::model::{self, SharedRow, PAGE_SIZE};
use super::service::{self, ImportOutcome, ShareOutcome};
use crate::audit::RequestMeta;
use crate::auth::extractors::CurrentUser;
use crate::db::{self};
use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::{render, see_other};
use crate::state::AppState;

#[derive(Debug, Deserialize, Default)]
pub struct BrowseQuery {
    q: Option<String>,
    sort: Option<String>,
    page: Option<i64>,
}

#[derive(Template)]
#[template(path = "community/browse.html")]
struct BrowsePage {
    ctx: PageContext,
    /// `None` for a visitor, who may browse but not import.
    viewer_id: Option<i64>,
    rows: Vec<SharedRow>,
    q: String,
    sort: String,
    page: i64,
    pages: i64,
    total: i64,
}

impl BrowsePage {
    fn own(&self, row: &SharedRow) -> bool {
        self.viewer_id.is_some_and(|v| row.own(&v))
    }
    fn page_link(&self, page: &i64) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("q", &self.q).append_pair("sort", &self.sort).append_pair("page", &page.to_string());
        format!("/community?{}", s.finish())
    }
}

async fn browse(
    ctx: PageContext,
    viewer: crate::auth::extractors::MaybeUser,
    query: web::Query<BrowseQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let q: String = query.q.unwrap_or_default().trim().chars().take(200).collect();
    let sort = match query.sort.as_deref() {
        Some(s @ ("tried" | "completed")) => s.to_owned(),
        _ => "newest".to_owned(),
    };
    let page = crate::pagination::page_number(query.page);
    let viewer_id = viewer.id();
    let (q2, sort2) = (q.clone(), sort.clone());
    let key = viewer
        .view_key(&state, "community", format!("{q}\u{1f}{sort}\u{1f}{page}"))
        .await?
        .kept_if(q.is_empty() && page <= crate::views::KEPT_PAGES);
    let rows =
        state.views.load(&state.reads, key, move |conn| Ok(model::browse(conn, viewer_id, &q2, &sort2, page)?)).await?;
    let total = rows.first().map(|r| r.total_rows).unwrap_or(0);
    let pages = crate::pagination::page_count(total, PAGE_SIZE);
    render(&BrowsePage { ctx, viewer_id, rows, q, sort, page, pages, total })
}

async fn import(
    current: CurrentUser,
    path: web::Path<i64>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (user_id, community_id) = (current.user.id, path.into_inner());
    let outcome = service::import(&state, community_id, user_id, &meta).await?;
    match outcome {
        ImportOutcome::Imported(_) => {
            FlashMessage::success("Added to your achievements.").send();
            Ok(see_other("/achievements"))
        }
        ImportOutcome::Already => {
            FlashMessage::info("That achievement is already in your list.").send();
            Ok(see_other("/community"))
        }
        ImportOutcome::Own => {
            FlashMessage::info("That is your own achievement.").send();
            Ok(see_other("/community"))
        }
        ImportOutcome::Full => {
            FlashMessage::error(crate::achievements::service::goals_full(state.settings.goals_per_account)).send();
            Ok(see_other(&format!("/community/{community_id}")))
        }
        ImportOutcome::NotFound => Err(AppError::NotFound),
    }
}

async fn share(
    current: CurrentUser,
    path: web::Path<i64>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let verified = current.user.email_verified_at.is_some();
    match service::share(&state.pool, current.user.id, verified, path.into_inner(), &meta).await? {
        ShareOutcome::Shared { name } => {
            FlashMessage::success(format!("Shared \u{201c}{name}\u{201d} with the community.")).send()
        }
        ShareOutcome::Unverified => {
            FlashMessage::error("Verify your email address before sharing achievements.").send()
        }
        ShareOutcome::NeedsEdit => FlashMessage::error("Fix this achievement's condition before sharing it.").send(),
    }
    Ok(see_other("/achievements"))
}

async fn unshare(
    current: CurrentUser,
    path: web::Path<i64>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    service::unshare(&state.pool, current.user.id, path.into_inner(), &meta).await?;
    FlashMessage::info("No longer shared. Copies others imported stay theirs.").send();
    Ok(see_other("/achievements"))
}

#[derive(Template)]
#[template(path = "community/detail.html")]
struct DetailPage {
    ctx: PageContext,
    d: service::Detail,
    signed_in: bool,
    /// The viewer shared it.
    own: bool,
    media: url::Url,
    tiers: crate::rarity::Tiers,
}

impl DetailPage {
    fn describe(&self) -> String {
        self.d
            .condition
            .as_ref()
            .map(|c| c.describe())
            .unwrap_or_else(|| "This goal's condition cannot be read.".into())
    }
    fn progress_words(&self) -> Option<String> {
        self.d
            .progress
            .map(|(c, t, _)| crate::achievements::condition::describe_progress(&self.d.share.row.condition_type, c, t))
    }
    fn progress_percent(&self) -> u32 {
        self.d.progress.map(|(c, t, _)| crate::achievements::condition::percent_done(c, t)).unwrap_or(0)
    }
    fn icon(&self, g: &crate::models::game::NamedGame) -> Option<String> {
        g.icon_hash.as_ref().map(|h| crate::models::library::icon_url(&self.media, g.appid, h))
    }
    fn game_name(&self, appid: &i64) -> String {
        self.d
            .games
            .iter()
            .find(|g| g.appid == *appid)
            .map(|g| g.name.clone())
            .unwrap_or_else(|| format!("App {appid}"))
    }
}

/// A shared goal's own page.
async fn detail(
    ctx: PageContext,
    viewer: crate::auth::extractors::MaybeUser,
    id: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (id, viewer_id) = (id.into_inner(), viewer.0.as_ref().map(|v| v.user.id));
    let (d, (tiers, _)) = db::run(&state.pool, move |conn| {
        Ok((service::detail(conn, id, viewer_id)?, crate::rarity::model::tiers(conn)?))
    })
    .await?;
    let own = viewer_id.is_some() && d.share.row.creator_id == viewer_id;
    let media = state.settings.steam_media_url.clone();
    render(&DetailPage { ctx, d, signed_in: viewer_id.is_some(), own, media, tiers })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/community").route(web::get().to(browse)))
        .service(web::resource("/community/{id}").route(web::get().to(detail)))
        .service(web::resource("/community/{id}/import").route(web::post().to(import)))
        .service(web::resource("/achievements/{id}/share").route(web::post().to(share)))
        .service(web::resource("/achievements/{id}/unshare").route(web::post().to(unshare)));
}
