//! The achievement pages: list, create, edit, delete, share and unshare.

use std::time::Instant;

use actix_multipart::form::MultipartForm;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use diesel::prelude::*;
use serde_json::json;

use super::condition::TYPES;
use super::form::{self, AchievementForm, AchievementOption, FormValues, GameOption};
use super::model::{self, AchievementInput, AchievementRow};
use crate::audit::{AuditEvent, RequestMeta};
use crate::auth::CurrentUser;
use crate::community;
use crate::db::{self, PgPool};
use crate::error::AppError;
use crate::images::model::{self as images, StoreError, UploadRecord};
use crate::images::serve::SharedStorage;
use crate::images::{process_bounded, ImageError, Processed};
use crate::layout::{render, render_status, see_other, PageContext};
use crate::settings::Settings;

#[derive(Template)]
#[template(path = "achievements/list.html")]
struct ListPage {
    ctx: PageContext,
    rows: Vec<AchievementRow>,
    can_share: bool,
}

async fn list(ctx: PageContext, current: CurrentUser, pool: web::Data<PgPool>) -> Result<HttpResponse, AppError> {
    let user_id = current.user.id;
    let rows = db::run(&pool, move |conn| Ok(model::list_for(conn, user_id)?)).await?;
    let can_share = current.user.email_verified_at.is_some();
    render(&ListPage { ctx, rows, can_share })
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
    errors: Vec<String>,
}

impl FormPage {
    fn types(&self) -> &'static [(&'static str, &'static str)] {
        &TYPES
    }
    fn game_selected(&self, appid: &i64) -> bool {
        self.values.games.contains(appid)
    }
    fn achievement_selected(&self, option: &AchievementOption) -> bool {
        self.values.achievements.contains(&option.value())
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
    let picked = values.games.clone();
    let (games, achievement_options) = db::run(pool, move |conn| {
        Ok((form::game_options(conn, user_id)?, form::achievement_options(conn, user_id, &picked)?))
    })
    .await?;
    render_status(status, &FormPage { ctx, editing, values, games, achievement_options, errors })
}

/// The new page; its "Show achievements" button comes back here by GET with
/// the values typed so far, to offer the picked games' achievements.
async fn new(
    ctx: PageContext,
    current: CurrentUser,
    req: actix_web::HttpRequest,
    pool: web::Data<PgPool>,
) -> Result<HttpResponse, AppError> {
    let values = FormValues::from_query(req.query_string())
        .unwrap_or_else(|| FormValues { condition_type: "complete_games".into(), ..Default::default() });
    form_page(ctx, &pool, current.user.id, None, values, Vec::new(), StatusCode::OK).await
}

async fn find(pool: &PgPool, id: i64, user_id: i64) -> Result<AchievementRow, AppError> {
    db::run(pool, move |conn| model::find_owned(conn, id, user_id)?.ok_or(AppError::NotFound)).await
}

async fn edit(
    ctx: PageContext,
    current: CurrentUser,
    path: web::Path<i64>,
    req: actix_web::HttpRequest,
    pool: web::Data<PgPool>,
) -> Result<HttpResponse, AppError> {
    let row = find(&pool, path.into_inner(), current.user.id).await?;
    if let Some(values) = FormValues::from_query(req.query_string()) {
        return form_page(ctx, &pool, current.user.id, Some(row), values, Vec::new(), StatusCode::OK).await;
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
    form_page(ctx, &pool, current.user.id, Some(row), values, errors, StatusCode::OK).await
}

/// Checks a submission: its values, its games against the library, and its
/// image (decoded off the async workers).
async fn check(
    pool: &PgPool,
    user_id: i64,
    values: &FormValues,
    image: Option<Vec<u8>>,
) -> Result<Result<(AchievementInput, Option<Processed>), Vec<String>>, AppError> {
    let input = match values.parse() {
        Ok(input) => input,
        Err(errors) => return Ok(Err(errors)),
    };
    let condition = input.condition.clone();
    let mut errors = db::run(pool, move |conn| Ok(form::check_ownership(conn, user_id, &condition)?)).await?;
    let processed = match image {
        None => None,
        Some(bytes) => match process_bounded(bytes).await {
            Ok(p) => Some(p),
            Err(ImageError::TooLarge) => return Err(AppError::PayloadTooLarge),
            Err(ImageError::Busy) => return Err(AppError::Unavailable(anyhow::anyhow!("image decoding queue full"))),
            Err(e) => {
                errors.push(format!("{e} Choose the image again."));
                None
            }
        },
    };
    if errors.is_empty() {
        Ok(Ok((input, processed)))
    } else {
        Ok(Err(errors))
    }
}

/// The audit entry for an image stored, replaced or removed.
fn image_event(action: &'static str, meta: &RequestMeta, user_id: i64, details: serde_json::Value) -> AuditEvent {
    AuditEvent::new("image", action, meta).actor(user_id).details(details)
}

fn upload_details(p: &Processed, record: &UploadRecord, achievement_id: i64, started: Instant) -> serde_json::Value {
    json!({
        "achievement_id": achievement_id,
        "image": record.image.public_id,
        "size": p.bytes.len(),
        "thumb_size": p.thumb.len(),
        "content_type": p.content_type,
        "sha256": p.sha256,
        "stored_new_file": record.new_blob,
        "duration_ms": started.elapsed().as_millis() as u64,
    })
}

/// Saves a new image for an achievement inside the caller's transaction,
/// mapping a full quota to the form's error list.
fn store_image(
    conn: &mut PgConnection,
    storage: &SharedStorage,
    settings: &Settings,
    user_id: i64,
    p: &Processed,
) -> Result<Result<UploadRecord, String>, AppError> {
    match images::store(conn, storage.as_ref(), Some(user_id), p, Some(settings.upload_quota_bytes)) {
        Ok(r) => Ok(Ok(r)),
        Err(e @ StoreError::Quota { .. }) => Ok(Err(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

#[allow(clippy::too_many_arguments)]
async fn create(
    ctx: PageContext,
    current: CurrentUser,
    form: MultipartForm<AchievementForm>,
    meta: RequestMeta,
    pool: web::Data<PgPool>,
    storage: web::Data<SharedStorage>,
    settings: web::Data<Settings>,
) -> Result<HttpResponse, AppError> {
    let started = Instant::now();
    let user_id = current.user.id;
    let (values, image, _) = FormValues::from_form(form.into_inner());
    let (input, processed) = match check(&pool, user_id, &values, image).await? {
        Ok(ok) => ok,
        Err(errors) => {
            return form_page(ctx, &pool, user_id, None, values, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    };
    let storage = storage.get_ref().clone();
    let saved = db::run(&pool, move |conn| {
        let result = conn.transaction::<_, AppError, _>(|conn| {
            let upload = match &processed {
                Some(p) => match store_image(conn, &storage, &settings, user_id, p)? {
                    Ok(r) => Some(r),
                    Err(quota) => return Ok(Err(quota)),
                },
                None => None,
            };
            let id = model::insert(conn, user_id, &input, upload.as_ref().map(|u| u.image.id), None)?;
            AuditEvent::new("achievement", "create", &meta)
                .actor(user_id)
                .target_text(id.to_string())
                .details(json!({ "condition_type": input.condition.kind() }))
                .record(conn)?;
            if let (Some(p), Some(u)) = (&processed, &upload) {
                image_event("upload", &meta, user_id, upload_details(p, u, id, started)).record(conn)?;
            }
            Ok(Ok(()))
        })?;
        if result.is_ok() {
            model::evaluate(conn, &[user_id])?;
        }
        Ok(result)
    })
    .await?;
    if let Err(quota) = saved {
        return form_page(ctx, &pool, user_id, None, values, vec![quota], StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    FlashMessage::success("Achievement created.").send();
    Ok(see_other("/achievements"))
}

#[allow(clippy::too_many_arguments)]
async fn update(
    ctx: PageContext,
    current: CurrentUser,
    path: web::Path<i64>,
    form: MultipartForm<AchievementForm>,
    meta: RequestMeta,
    pool: web::Data<PgPool>,
    storage: web::Data<SharedStorage>,
    settings: web::Data<Settings>,
) -> Result<HttpResponse, AppError> {
    let started = Instant::now();
    let user_id = current.user.id;
    let row = find(&pool, path.into_inner(), user_id).await?;
    let (values, image, remove_image) = FormValues::from_form(form.into_inner());
    let (input, processed) = match check(&pool, user_id, &values, image).await? {
        Ok(ok) => ok,
        Err(errors) => {
            return form_page(ctx, &pool, user_id, Some(row), values, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    };
    let storage = storage.get_ref().clone();
    let (id, old_image) = (row.id, row.image_id);
    let row_for_save = row.clone();
    let saved = db::run(&pool, move |conn| {
        let result = conn.transaction::<_, AppError, _>(|conn| {
            // The new image first: a full quota must refuse the edit before
            // anything is written.
            let upload = match &processed {
                Some(p) => match store_image(conn, &storage, &settings, user_id, p)? {
                    Ok(r) => Some(r),
                    Err(quota) => return Ok(Err(quota)),
                },
                None => None,
            };
            model::update(conn, &row_for_save, &input)?;
            let mut old_sha = None;
            if processed.is_some() || remove_image {
                if let Some(old) = old_image {
                    let (sha, mut details) = images::describe(conn, old)?;
                    images::delete(conn, &[old])?;
                    old_sha = Some(sha);
                    if processed.is_none() {
                        details["achievement_id"] = json!(id);
                        details["duration_ms"] = json!(started.elapsed().as_millis() as u64);
                        image_event("delete", &meta, user_id, details).record(conn)?;
                    }
                }
            }
            if let (Some(p), Some(upload)) = (&processed, &upload) {
                model::set_image(conn, id, user_id, Some(upload.image.id))?;
                let action = if old_image.is_some() { "replace" } else { "upload" };
                let mut details = upload_details(p, upload, id, started);
                details["replaced_sha256"] = json!(old_sha);
                image_event(action, &meta, user_id, details).record(conn)?;
            }
            let mut released = community::model::refresh_from_source(conn, id)?;
            released.extend(old_sha);
            AuditEvent::new("achievement", "update", &meta).actor(user_id).target_text(id.to_string()).record(conn)?;
            Ok(Ok(released))
        })?;
        if let Ok(released) = &result {
            model::evaluate(conn, &[user_id])?;
            if !released.is_empty() {
                images::sweep_orphans(conn, storage.as_ref(), Some(released));
            }
        }
        Ok(result.map(|_| ()))
    })
    .await?;
    if let Err(quota) = saved {
        return form_page(ctx, &pool, user_id, Some(row), values, vec![quota], StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    FlashMessage::success("Achievement saved.").send();
    Ok(see_other("/achievements"))
}

async fn delete(
    current: CurrentUser,
    path: web::Path<i64>,
    meta: RequestMeta,
    pool: web::Data<PgPool>,
    storage: web::Data<SharedStorage>,
) -> Result<HttpResponse, AppError> {
    let started = Instant::now();
    let user_id = current.user.id;
    let row = find(&pool, path.into_inner(), user_id).await?;
    let storage = storage.get_ref().clone();
    db::run(&pool, move |conn| {
        let sha = conn.transaction::<_, AppError, _>(|conn| {
            // Deleting the original withdraws it from the community list;
            // copies others imported stay theirs.
            community::model::set_active(conn, row.id, false)?;
            model::delete(conn, row.id, user_id)?;
            let mut sha = None;
            if let Some(image_id) = row.image_id {
                let (image_sha, mut details) = images::describe(conn, image_id)?;
                images::delete(conn, &[image_id])?;
                details["achievement_id"] = json!(row.id);
                details["duration_ms"] = json!(started.elapsed().as_millis() as u64);
                image_event("delete", &meta, user_id, details).record(conn)?;
                sha = Some(image_sha);
            }
            AuditEvent::new("achievement", "delete", &meta)
                .actor(user_id)
                .target_text(row.id.to_string())
                .record(conn)?;
            Ok(sha)
        })?;
        if let Some(sha) = sha {
            images::sweep_orphans(conn, storage.as_ref(), Some(&[sha]));
        }
        Ok(())
    })
    .await?;
    FlashMessage::info(format!("Deleted \u{201c}{}\u{201d}.", row.name)).send();
    Ok(see_other("/achievements"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/achievements").route(web::get().to(list)).route(web::post().to(create)))
        .service(web::resource("/achievements/new").route(web::get().to(new)))
        .service(web::resource("/achievements/{id}").route(web::post().to(update)))
        .service(web::resource("/achievements/{id}/edit").route(web::get().to(edit)))
        .service(web::resource("/achievements/{id}/delete").route(web::post().to(delete)));
}
