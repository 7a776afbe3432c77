//! The achievement use cases: create, update and delete, each one
//! transaction with its image, its community listing and its audit entries,
//! and progress recomputed after.

use std::time::Instant;

use diesel::prelude::*;
use serde_json::json;

use super::form::{self, FormValues};
use super::model::{self, AchievementInput, AchievementRow, NewCustomAchievement};
use super::shared::model as listing;
use crate::audit::{AuditEvent, RequestMeta};
use crate::db::{self, PgPool};
use crate::error::{AppError, Outcome};
use crate::images::model::{self as images, StoreError, UploadRecord};
use crate::images::{process_bounded, ImageError, Processed};
use crate::infra::storage::SharedStorage;
use crate::state::AppState;

/// What an edit asks for besides the form's values.
pub struct Changes<'a> {
    /// The form as sent.
    pub values: &'a FormValues,
    /// A new image's bytes, when one was chosen.
    pub image: Option<Vec<u8>>,
    /// "Remove the image" was ticked.
    pub remove_image: bool,
}

/// Creates an achievement for `user_id` from the form. `Refused(messages)` when
/// the form must be shown again with them; nothing is written then.
pub async fn create(
    state: &AppState,
    user_id: i64,
    values: &FormValues,
    image: Option<Vec<u8>>,
    meta: &RequestMeta,
) -> Result<Outcome<()>, AppError> {
    let started = Instant::now();
    let (input, processed) = match check(&state.pool, user_id, values, image).await? {
        Outcome::Done(ok) => ok,
        Outcome::Refused(errors) => return Ok(Outcome::Refused(errors)),
    };
    let (storage, quota, meta) = (state.storage.clone(), state.settings.upload_quota_bytes, meta.clone());
    let limit = state.settings.goals_per_account;
    let saved = db::run(&state.pool, move |conn| {
        let result = conn.transaction::<_, AppError, _>(|conn| {
            if !model::has_room(conn, user_id, 1, limit)? {
                return Ok(Err(goals_full(limit)));
            }
            let upload = match store_image(conn, &storage, quota, user_id, processed.as_ref())? {
                Outcome::Done(upload) => upload,
                Outcome::Refused(full) => return Ok(Err(full)),
            };
            let condition = input.condition.to_json();
            let new = NewCustomAchievement {
                image_id: upload.as_ref().map(|u| u.image.id),
                ..NewCustomAchievement::from_input(user_id, &input, &condition)
            };
            let id = model::insert(conn, &new)?;
            AuditEvent::new("achievement", "create", &meta)
                .actor(user_id)
                .target_text(id.to_string())
                .details(json!({ "condition_type": input.condition.kind() }))
                .record(conn)?;
            if let (Some(p), Some(u)) = (&processed, &upload) {
                image_event("upload", &meta, user_id, upload_details(p, u, id, started)).record(conn)?;
            }
            Ok(Ok(id))
        })?;
        if let Ok(id) = result {
            model::evaluate_goals(conn, user_id, &[id])?;
        }
        Ok(result.map(|_| ()))
    })
    .await?;
    Ok(saved.map_err(|refused| vec![refused]).into())
}

/// Saves an edit of `row` (owned by `user_id`): its values, a new or
/// removed image, the community copy it may have. `Refused(messages)` when the
/// form must be shown again; nothing is written then.
pub async fn update(
    state: &AppState,
    user_id: i64,
    row: &AchievementRow,
    changes: Changes<'_>,
    meta: &RequestMeta,
) -> Result<Outcome<()>, AppError> {
    let started = Instant::now();
    let Changes { values, image, remove_image } = changes;
    let (input, processed) = match check(&state.pool, user_id, values, image).await? {
        Outcome::Done(ok) => ok,
        Outcome::Refused(errors) => return Ok(Outcome::Refused(errors)),
    };
    let (storage, quota, meta) = (state.storage.clone(), state.settings.upload_quota_bytes, meta.clone());
    let (id, old_image) = (row.id, row.image_id);
    let row = row.clone();
    let saved = db::run(&state.pool, move |conn| {
        let result = conn.transaction::<_, AppError, _>(|conn| {
            // The new image first: a full quota must refuse the edit before
            // anything is written.
            let upload = match store_image(conn, &storage, quota, user_id, processed.as_ref())? {
                Outcome::Done(upload) => upload,
                Outcome::Refused(full) => return Ok(Err(full)),
            };
            model::update(conn, &row, &input)?;
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
            let mut released = listing::refresh_from_source(conn, id)?;
            released.extend(old_sha);
            AuditEvent::new("achievement", "update", &meta).actor(user_id).target_text(id.to_string()).record(conn)?;
            Ok(Ok(released))
        })?;
        if let Ok(released) = &result {
            model::evaluate_goals(conn, user_id, &[id])?;
            if !released.is_empty() {
                images::sweep_orphans(conn, storage.as_ref(), Some(released));
            }
        }
        Ok(result.map(|_| ()))
    })
    .await?;
    Ok(saved.map_err(|quota| vec![quota]).into())
}

/// Deletes `row` (owned by `user_id`) with its image, and withdraws it from
/// the community list; copies others imported stay theirs.
pub async fn delete(state: &AppState, user_id: i64, row: &AchievementRow, meta: &RequestMeta) -> Result<(), AppError> {
    let started = Instant::now();
    let (storage, meta, row) = (state.storage.clone(), meta.clone(), row.clone());
    db::run(&state.pool, move |conn| {
        let sha = conn.transaction::<_, AppError, _>(|conn| {
            listing::set_active(conn, row.id, false)?;
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
    .await
}

/// Checks a submission: its values, its games against the library, and its
/// image (decoded off the async workers).
async fn check(
    pool: &PgPool,
    user_id: i64,
    values: &FormValues,
    image: Option<Vec<u8>>,
) -> Result<Outcome<(AchievementInput, Option<Processed>)>, AppError> {
    let mut values = values.clone();
    if values.condition_type == "combined" {
        let picked = values.parts.clone();
        values.part_conditions =
            db::run(pool, move |conn| Ok(super::model::conditions_of(conn, user_id, &picked)?)).await?;
    }
    let input = match values.parse() {
        Ok(input) => input,
        Err(mut errors) => {
            if image.is_some() {
                // Browsers never fill a file field again: say so.
                errors.push("Choose the image again: a refused form cannot keep the file you picked.".into());
            }
            return Ok(Outcome::Refused(errors));
        }
    };
    let condition = input.condition.clone();
    let mut errors = db::run(pool, move |conn| Ok(form::check_ownership(conn, user_id, &condition)?)).await?;
    let processed = match image {
        None => None,
        Some(bytes) => match process_bounded(bytes).await {
            Ok(p) => Some(p),
            Err(ImageError::TooLarge) => {
                errors.push("The image is larger than 5 MB: choose a smaller one.".into());
                None
            }
            Err(ImageError::Busy) => return Err(AppError::Unavailable(anyhow::anyhow!("image decoding queue full"))),
            Err(e) => {
                errors.push(format!("{e} Choose the image again."));
                None
            }
        },
    };
    if errors.is_empty() {
        Ok(Outcome::Done((input, processed)))
    } else {
        Ok(Outcome::Refused(errors))
    }
}

/// What a user at the goals cap is told, on the form and the import page.
pub fn goals_full(limit: i64) -> String {
    format!(
        "You keep {limit} goals, as many as one account may on this instance. \
         Delete one you no longer follow to add another."
    )
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

/// Saves the new image, if one was chosen, inside the caller's transaction,
/// mapping a full quota to the form's error list.
fn store_image(
    conn: &mut PgConnection,
    storage: &SharedStorage,
    quota: u64,
    user_id: i64,
    p: Option<&Processed>,
) -> Result<Outcome<Option<UploadRecord>, String>, AppError> {
    let Some(p) = p else { return Ok(Outcome::Done(None)) };
    match images::store(conn, storage.as_ref(), Some(user_id), p, Some(quota)) {
        Ok(r) => Ok(Outcome::Done(Some(r))),
        Err(e @ StoreError::Quota { .. }) => Ok(Outcome::Refused(e.to_string())),
        Err(e) => Err(e.into()),
    }
}
