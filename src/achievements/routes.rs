//! The achievement pages: list, create, edit, delete, share and unshare.

use std::collections::HashSet;

use actix_multipart::form::MultipartForm;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;

use super::condition::TYPES;
use super::form::{self, AchievementForm, AchievementOption, FormValues, GameOption};
use super::model::{self, AchievementRow, GoalCard};
use super::service;
use crate::audit::RequestMeta;
use crate::auth::extractors::CurrentUser;
use crate::db::{self, PgPool};
use crate::error::{AppError, Outcome};
use crate::layout::PageContext;
use crate::response::{render, render_status, see_other};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "achievements/list.html")]
struct ListPage {
    ctx: PageContext,
    rows: Vec<GoalCard>,
    can_share: bool,
    /// The ids of the goals the user pinned.
    pinned: Vec<i64>,
    page: i64,
    pages: i64,
    /// Goals the user keeps, and how many they may.
    total: i64,
    limit: i64,
}

impl ListPage {
    fn is_pinned(&self, id: &i64) -> bool {
        self.pinned.contains(id)
    }
    fn page_link(&self, page: &i64) -> String {
        format!("/achievements?page={page}")
    }
    fn full(&self) -> bool {
        self.total >= self.limit
    }
}

/// Goals on one page of the list.
pub const LIST_PAGE_SIZE: i64 = 25;

async fn list(
    ctx: PageContext,
    current: CurrentUser,
    query: web::Query<crate::pagination::PageQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let user_id = current.user.id;
    let page = query.number();
    let key = crate::views::ViewKey::new("achievements", user_id, current.versions, page.to_string())
        .kept_if(page <= crate::views::KEPT_PAGES);
    let ((rows, total), (_, pinned)) = state
        .views
        .load(&state.reads, key, move |conn| {
            Ok((model::page_for(conn, user_id, page, LIST_PAGE_SIZE)?, crate::pins::pinned_ids(conn, user_id)?))
        })
        .await?;
    let can_share = current.user.email_verified_at.is_some();
    let pages = crate::pagination::page_count(total, LIST_PAGE_SIZE);
    let limit = state.settings.goals_per_account;
    render(&ListPage { ctx, rows, can_share, pinned, page, pages, total, limit })
}

#[derive(Template)]
#[template(path = "achievements/form.html")]
struct FormPage {
    ctx: PageContext,
    /// The achievement being edited; `None` on the new page.
    editing: Option<AchievementRow>,
    values: FormValues,
    games: Vec<GameOption>,
    achievement_options: Vec<AchievementOption>,
    /// The user's goals that a combined goal may use (not the one edited).
    combinable: Vec<(i64, String)>,
    errors: Vec<String>,
    /// The achievements ticked, for the options' look-ups.
    ticked: HashSet<String>,
}

impl FormPage {
    fn part_selected(&self, id: &i64) -> bool {
        self.values.parts.contains(id)
    }
    fn types(&self) -> &'static [(&'static str, &'static str)] {
        &TYPES
    }
    fn max_games(&self) -> usize {
        super::condition::MAX_GAMES
    }
    fn max_achievements(&self) -> usize {
        super::condition::MAX_ACHIEVEMENTS
    }
    fn game_selected(&self, appid: &i64) -> bool {
        self.values.games.contains(appid)
    }
    fn achievement_selected(&self, option: &AchievementOption) -> bool {
        self.ticked.contains(&option.value())
    }
    fn action(&self) -> String {
        match &self.editing {
            Some(row) => format!("/achievements/{}", row.id),
            None => "/achievements".to_owned(),
        }
    }
}

/// Loads what the form offers for these values and shows it with `status`
/// (422 after a refused submission, 200 otherwise).
async fn form_page(
    ctx: PageContext,
    pool: &PgPool,
    user_id: i64,
    editing: Option<AchievementRow>,
    values: FormValues,
    errors: Vec<String>,
    status: StatusCode,
) -> Result<HttpResponse, AppError> {
    // The games whose achievements the form offers: no more than a goal
    // may list, however many the query string names.
    let picked: Vec<i64> = values.games.iter().copied().take(super::condition::MAX_GAMES).collect();
    let editing_id = editing.as_ref().map(|e| e.id);
    let (games, achievement_options, mut combinable) = db::run(pool, move |conn| {
        Ok((
            form::game_options(conn, user_id)?,
            form::achievement_options(conn, user_id, &picked)?,
            super::model::combinable(conn, user_id)?,
        ))
    })
    .await?;
    combinable.retain(|(id, _)| Some(*id) != editing_id);
    let ticked = values.achievements.iter().cloned().collect();
    render_status(status, &FormPage { ctx, editing, values, games, achievement_options, combinable, errors, ticked })
}

/// The new page; its "Show achievements" button comes back here by GET with
/// the values typed so far, to offer the picked games' achievements.
async fn new(
    ctx: PageContext,
    current: CurrentUser,
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let values = FormValues::from_query(req.query_string())
        .unwrap_or_else(|| FormValues { condition_type: "complete_games".into(), ..Default::default() });
    form_page(ctx, pool, current.user.id, None, values, Vec::new(), StatusCode::OK).await
}

async fn find(pool: &PgPool, id: i64, user_id: i64) -> Result<AchievementRow, AppError> {
    db::run(pool, move |conn| model::find_owned(conn, id, user_id)?.ok_or(AppError::NotFound)).await
}

async fn edit(
    ctx: PageContext,
    current: CurrentUser,
    path: web::Path<i64>,
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let row = find(pool, path.into_inner(), current.user.id).await?;
    if let Some(values) = FormValues::from_query(req.query_string()) {
        return form_page(ctx, pool, current.user.id, Some(row), values, Vec::new(), StatusCode::OK).await;
    }
    let mut errors = Vec::new();
    if row.needs_edit {
        errors.push(format!(
            "This achievement came from the old app with a condition Questline cannot check ({}: {}). \
             Choose its condition again to have it tracked.",
            row.condition_type, row.condition
        ));
    }
    let values = FormValues::from_row(&row);
    // The note about an unreadable condition is advice, not a refusal.
    form_page(ctx, pool, current.user.id, Some(row), values, errors, StatusCode::OK).await
}

async fn create(
    ctx: PageContext,
    current: CurrentUser,
    form: MultipartForm<AchievementForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let user_id = current.user.id;
    let (values, image, _) = FormValues::from_form(form.into_inner());
    if let Outcome::Refused(errors) = service::create(&state, user_id, &values, image, &meta).await? {
        return form_page(ctx, &state.pool, user_id, None, values, errors, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    FlashMessage::success("Achievement created.").send();
    Ok(see_other("/achievements"))
}

async fn update(
    ctx: PageContext,
    current: CurrentUser,
    path: web::Path<i64>,
    form: MultipartForm<AchievementForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let user_id = current.user.id;
    let row = find(&state.pool, path.into_inner(), user_id).await?;
    let (values, image, remove_image) = FormValues::from_form(form.into_inner());
    let changes = service::Changes { values: &values, image, remove_image };
    if let Outcome::Refused(errors) = service::update(&state, user_id, &row, changes, &meta).await? {
        return form_page(ctx, &state.pool, user_id, Some(row), values, errors, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    FlashMessage::success("Achievement saved.").send();
    Ok(see_other("/achievements"))
}

async fn delete(
    current: CurrentUser,
    path: web::Path<i64>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let user_id = current.user.id;
    let row = find(&state.pool, path.into_inner(), user_id).await?;
    service::delete(&state, user_id, &row, &meta).await?;
    FlashMessage::info(format!("Deleted \u{201c}{}\u{201d}.", row.name)).send();
    Ok(see_other("/achievements"))
}

/// "Show achievements of the picked games": the form again with the
/// picked games' achievements to choose from. A POST, so the CSRF token
/// never lands in a URL; nothing is saved.
async fn preview_new(
    ctx: PageContext,
    current: CurrentUser,
    form: MultipartForm<AchievementForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (values, _, _) = FormValues::from_form(form.into_inner());
    form_page(ctx, &state.pool, current.user.id, None, values, Vec::new(), StatusCode::OK).await
}

async fn preview_edit(
    ctx: PageContext,
    current: CurrentUser,
    path: web::Path<i64>,
    form: MultipartForm<AchievementForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let row = find(&state.pool, path.into_inner(), current.user.id).await?;
    let (values, _, _) = FormValues::from_form(form.into_inner());
    form_page(ctx, &state.pool, current.user.id, Some(row), values, Vec::new(), StatusCode::OK).await
}

#[derive(Template)]
#[template(path = "achievements/delete.html")]
struct DeletePage {
    ctx: PageContext,
    row: AchievementRow,
}

/// Asks before deleting.
async fn delete_confirm(
    ctx: PageContext,
    current: CurrentUser,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let row = find(&state.pool, path.into_inner(), current.user.id).await?;
    render(&DeletePage { ctx, row })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/achievements").route(web::get().to(list)).route(web::post().to(create)))
        .service(web::resource("/achievements/new").route(web::get().to(new)))
        .service(web::resource("/achievements/preview").route(web::post().to(preview_new)))
        .service(web::resource("/achievements/{id}/preview").route(web::post().to(preview_edit)))
        .service(web::resource("/achievements/{id}").route(web::post().to(update)))
        .service(web::resource("/achievements/{id}/edit").route(web::get().to(edit)))
        .service(
            web::resource("/achievements/{id}/delete")
                .route(web::get().to(delete_confirm))
                .route(web::post().to(delete)),
        );
}
