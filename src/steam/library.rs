//! The library page (every game, filtered, sorted, searched, paginated) and
//! the game page (its achievements). Each renders from one query besides the
//! session check.

use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::auth::extractors::CurrentUser;
use crate::error::AppError;
use crate::layout::PageContext;
use crate::models::library::{self, AchievementRow, LibraryQuery, LibraryRow, PAGE_SIZE};
use crate::rarity::{self, Tiers};
use crate::response::render;
use crate::state::AppState;
use crate::views::ViewKey;

#[derive(Template)]
#[template(path = "steam/library.html")]
struct LibraryPage {
    ctx: PageContext,
    rows: Vec<LibraryRow>,
    query: LibraryQuery,
    total: i64,
    page: i64,
    pages: i64,
    /// Steam's media host, for the game icons.
    media: url::Url,
    tiers: Tiers,
}

impl LibraryPage {
    /// "1 game", "30 games".
    fn count_words(&self) -> String {
        match self.total {
            1 => "1 game".to_owned(),
            n => format!("{n} games"),
        }
    }
    fn q(&self) -> &str {
        self.query.q.as_deref().unwrap_or("")
    }
    fn filter(&self) -> &str {
        self.query.filter.as_deref().unwrap_or("")
    }
    fn sort(&self) -> &str {
        self.query.sort.as_deref().unwrap_or("name")
    }
    /// The link to another page with the same filters.
    fn page_link(&self, page: &i64) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("q", self.q()).append_pair("filter", self.filter()).append_pair("sort", self.sort());
        s.append_pair("page", &page.to_string());
        format!("/library?{}", s.finish())
    }
}

async fn library(
    ctx: PageContext,
    current: CurrentUser,
    query: web::Query<LibraryQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let (user_id, q) = (current.user.id, query.clone());
    let key = ViewKey::new("library", user_id, current.versions, query.cache_params()).kept_if(query.keepable());
    let ((rows, total), (tiers, _)) = state
        .views
        .load(&state.reads, key, move |conn| {
            Ok((library::library_page(conn, user_id, &q)?, rarity::model::tiers(conn)?))
        })
        .await?;
    let pages = crate::pagination::page_count(total, PAGE_SIZE);
    let page = crate::pagination::page_number(query.page);
    let media = state.settings.steam_media_url.clone();
    render(&LibraryPage { ctx, rows, query, total, page, pages, media, tiers })
}

#[derive(Template)]
#[template(path = "steam/game.html")]
struct GamePage {
    ctx: PageContext,
    appid: i64,
    name: String,
    hours: String,
    unlocked: i32,
    total: i32,
    sort: String,
    achievements: Vec<AchievementRow>,
    /// Points earned in this game, and all its achievements are worth.
    points: i32,
    points_possible: i64,
    tiers: Tiers,
    /// The ids of the achievements the user pinned.
    pinned: Vec<i64>,
}

impl GamePage {
    fn is_pinned(&self, id: &i64) -> bool {
        self.pinned.contains(id)
    }
    fn here(&self) -> String {
        format!("/library/{}?sort={}", self.appid, self.sort)
    }
}

#[derive(Deserialize)]
pub struct GameQuery {
    sort: Option<String>,
}

async fn game(
    ctx: PageContext,
    current: CurrentUser,
    appid: web::Path<i64>,
    query: web::Query<GameQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (user_id, appid) = (current.user.id, appid.into_inner());
    let sort = query.into_inner().sort.unwrap_or_else(|| "unlocked".into());
    // Only the page's own sorts name a kept page; any other is the default.
    let sort_key: &'static str = match sort.as_str() {
        "rarity" => "rarity",
        "common" => "common",
        "name" => "name",
        "recent" => "recent",
        _ => "unlocked",
    };
    let key = ViewKey::new("game", user_id, current.versions, format!("{appid}:{sort_key}"));
    let (header, achievements, (tiers, _), (pinned, _)) = state
        .views
        .load(&state.reads, key, move |conn| {
            let header = library::game_header(conn, user_id, appid)?.ok_or(AppError::NotFound)?;
            Ok((
                header,
                library::game_achievements(conn, user_id, appid, sort_key)?,
                rarity::model::tiers(conn)?,
                crate::pins::pinned_ids(conn, user_id)?,
            ))
        })
        .await?;
    let points_possible = achievements.iter().filter(|a| !a.removed).map(|a| i64::from(a.points)).sum();
    render(&GamePage {
        ctx,
        appid,
        name: header.name,
        hours: format!("{:.1}", header.playtime_minutes as f64 / 60.0),
        unlocked: header.unlocked_count,
        total: header.achievement_count,
        sort,
        achievements,
        points: header.points,
        points_possible,
        tiers,
        pinned,
    })
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/library").route(web::get().to(library)))
        .service(web::resource("/library/{appid}").route(web::get().to(game)));
}
