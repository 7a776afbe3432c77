//! The library page (every game, filtered, sorted, searched, paginated) and
//! the game page (its achievements). Each renders from one query besides the
//! session check.

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Integer, Nullable, Text, Timestamptz};
use serde::Deserialize;

use crate::auth::extractors::CurrentUser;
use crate::db::{self};
use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::render;
use crate::state::AppState;

/// Games per page.
pub const PAGE_SIZE: i64 = 50;

/// One row of the library table.
#[derive(Debug, QueryableByName)]
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
    #[diesel(sql_type = BigInt)]
    pub total_rows: i64,
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

    pub fn icon_url(&self) -> Option<String> {
        self.icon_hash.as_ref().map(|h| {
            format!("https://media.steampowered.com/steamcommunity/public/images/apps/{}/{}.jpg", self.appid, h)
        })
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

/// One page of a user's library. Filter and sort names come from a fixed
/// list; anything else falls back to the default.
pub fn library_page(conn: &mut PgConnection, user_id: i64, query: &LibraryQuery) -> QueryResult<Vec<LibraryRow>> {
    let filter = match query.filter.as_deref() {
        Some("perfect") => "AND g.achievement_count > 0 AND le.unlocked_count >= g.achievement_count",
        Some("started") => "AND le.unlocked_count > 0 AND le.unlocked_count < g.achievement_count",
        Some("not_started") => "AND g.achievement_count > 0 AND le.unlocked_count = 0",
        _ => "",
    };
    let order = match query.sort.as_deref() {
        Some("playtime") => "le.playtime_minutes DESC",
        Some("completion") => "(le.unlocked_count::float8 / NULLIF(g.achievement_count, 0)) DESC NULLS LAST",
        Some("last_unlock") => "le.last_unlock_at DESC NULLS LAST",
        _ => "lower(g.name) ASC",
    };
    let search = query.q.as_deref().unwrap_or("").trim().to_owned();
    // LIKE wildcards typed by the user are literal characters.
    let pattern = crate::db::contains_pattern(&search);
    let page = crate::pagination::page_number(query.page);
    diesel::sql_query(format!(
        "SELECT g.appid, g.name, g.icon_hash, le.playtime_minutes, le.unlocked_count, g.achievement_count,
                le.last_unlock_at, count(*) OVER () AS total_rows
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
    .load(conn)
}

#[derive(Template)]
#[template(path = "steam/library.html")]
struct LibraryPage {
    ctx: PageContext,
    rows: Vec<LibraryRow>,
    query: LibraryQuery,
    total: i64,
    page: i64,
    pages: i64,
}

impl LibraryPage {
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
    let pool = &state.pool;
    let query = query.into_inner();
    let (user_id, q) = (current.user.id, query.clone());
    let rows = db::run(pool, move |conn| Ok(library_page(conn, user_id, &q)?)).await?;
    let total = rows.first().map(|r| r.total_rows).unwrap_or(0);
    let pages = crate::pagination::page_count(total, PAGE_SIZE);
    let page = crate::pagination::page_number(query.page);
    render(&LibraryPage { ctx, rows, query, total, page, pages })
}

/// One achievement as the game page shows it.
#[derive(Debug, QueryableByName)]
pub struct AchievementRow {
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
    #[diesel(sql_type = Bool)]
    pub unlocked: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub unlocked_at: Option<DateTime<Utc>>,
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

#[derive(Debug, QueryableByName)]
struct GameHeader {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Integer)]
    playtime_minutes: i32,
    #[diesel(sql_type = Integer)]
    unlocked_count: i32,
    #[diesel(sql_type = Integer)]
    achievement_count: i32,
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
    let pool = &state.pool;
    let (user_id, appid) = (current.user.id, appid.into_inner());
    let sort = query.into_inner().sort.unwrap_or_else(|| "unlocked".into());
    let order = match sort.as_str() {
        "rarity" => "ga.global_percent ASC NULLS LAST",
        "name" => "lower(ga.display_name) ASC",
        "recent" => "ua.unlocked_at DESC NULLS LAST",
        _ => "(ua.user_id IS NULL), ua.unlocked_at DESC NULLS LAST",
    };
    let (header, achievements) = db::run(pool, move |conn| {
        let header: Option<GameHeader> = diesel::sql_query(
            "SELECT g.name, le.playtime_minutes, le.unlocked_count, g.achievement_count
             FROM library_entries le JOIN games g ON g.appid = le.appid
             WHERE le.user_id = $1 AND le.appid = $2",
        )
        .bind::<BigInt, _>(user_id)
        .bind::<BigInt, _>(appid)
        .get_result(conn)
        .optional()?;
        let Some(header) = header else { return Err(AppError::NotFound) };
        let achievements: Vec<AchievementRow> = diesel::sql_query(format!(
            "SELECT ga.display_name, ga.description, ga.hidden, ga.icon_url, ga.icon_gray_url, ga.global_percent,
                    (ua.user_id IS NOT NULL) AS unlocked, ua.unlocked_at
             FROM game_achievements ga
             LEFT JOIN user_achievements ua ON ua.achievement_id = ga.id AND ua.user_id = $1
             WHERE ga.appid = $2
             ORDER BY {order}, ga.id"
        ))
        .bind::<BigInt, _>(user_id)
        .bind::<BigInt, _>(appid)
        .load(conn)?;
        Ok((header, achievements))
    })
    .await?;
    render(&GamePage {
        ctx,
        appid,
        name: header.name,
        hours: format!("{:.1}", header.playtime_minutes as f64 / 60.0),
        unlocked: header.unlocked_count,
        total: header.achievement_count,
        sort,
        achievements,
    })
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/library").route(web::get().to(library)))
        .service(web::resource("/library/{appid}").route(web::get().to(game)));
}
