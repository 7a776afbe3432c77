//! The community use cases that span shared and custom achievements.

use diesel::prelude::*;

use super::model;
use crate::achievements::model::{self as custom, NewCustomAchievement};
use crate::audit::{AuditEvent, RequestMeta};
use crate::db;
use crate::error::AppError;
use crate::images::model as images;
use crate::state::AppState;

/// What adding a shared achievement came to.
#[derive(Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Copied, as this custom achievement.
    Imported(i64),
    NotFound,
    /// The user shared it themselves.
    Own,
    Already,
    /// The user keeps as many goals as an account may.
    Full,
}

/// Copies a visible shared achievement (with its image) into the user's
/// list, counts a try, audits it and evaluates the copy, in one
/// transaction; a double click finds the copy and adds nothing.
pub async fn import(
    state: &AppState,
    community_id: i64,
    user_id: i64,
    meta: &RequestMeta,
) -> Result<ImportOutcome, AppError> {
    let (meta, limit) = (meta.clone(), state.settings.goals_per_account);
    db::run(&state.pool, move |conn| {
        let outcome = conn.transaction(|conn| copy(conn, community_id, user_id, limit))?;
        if let ImportOutcome::Imported(id) = outcome {
            AuditEvent::new("community", "import", &meta)
                .actor(user_id)
                .target_text(community_id.to_string())
                .details(serde_json::json!({ "achievement_id": id }))
                .record(conn)?;
            custom::evaluate_goals(conn, user_id, &[id])?;
        }
        Ok(outcome)
    })
    .await
}

/// What asking to share a goal came to.
#[derive(Debug, PartialEq, Eq)]
pub enum ShareOutcome {
    /// Listed (or listed again), under this name.
    Shared { name: String },
    /// Only owners with a confirmed address may share.
    Unverified,
    /// Its condition names something that no longer exists.
    NeedsEdit,
}

/// Lists the owner's goal `source_id` in the community (or refreshes its
/// listing) and audits it, in one transaction. Another user's goal is
/// `NotFound`.
pub async fn share(
    pool: &db::PgPool,
    user_id: i64,
    verified: bool,
    source_id: i64,
    meta: &RequestMeta,
) -> Result<ShareOutcome, AppError> {
    let meta = meta.clone();
    db::run(pool, move |conn| {
        conn.transaction(|conn| {
            let row = custom::find_owned(conn, source_id, user_id)?.ok_or(AppError::NotFound)?;
            if !verified {
                return Ok(ShareOutcome::Unverified);
            }
            if row.needs_edit {
                return Ok(ShareOutcome::NeedsEdit);
            }
            let id = model::share(conn, source_id, user_id)?;
            AuditEvent::new("community", "share", &meta)
                .actor(user_id)
                .target_text(source_id.to_string())
                .details(serde_json::json!({ "community_id": id }))
                .record(conn)?;
            Ok(ShareOutcome::Shared { name: row.name.clone() })
        })
    })
    .await
}

/// Takes the owner's goal `source_id` out of the community list (copies
/// others made stay theirs) and audits it. Another user's goal is
/// `NotFound`.
pub async fn unshare(pool: &db::PgPool, user_id: i64, source_id: i64, meta: &RequestMeta) -> Result<(), AppError> {
    let meta = meta.clone();
    db::run(pool, move |conn| {
        conn.transaction(|conn| {
            custom::find_owned(conn, source_id, user_id)?.ok_or(AppError::NotFound)?;
            model::set_active(conn, source_id, false)?;
            AuditEvent::new("community", "unshare", &meta)
                .actor(user_id)
                .target_text(source_id.to_string())
                .record(conn)?;
            Ok(())
        })
    })
    .await
}

fn copy(conn: &mut PgConnection, community_id: i64, user_id: i64, limit: i64) -> QueryResult<ImportOutcome> {
    let Some(share) = model::lock_for_copy(conn, community_id)? else { return Ok(ImportOutcome::NotFound) };
    if share.creator_id == Some(user_id) {
        return Ok(ImportOutcome::Own);
    }
    if custom::has_copy_of(conn, user_id, community_id)? {
        return Ok(ImportOutcome::Already);
    }
    if !custom::has_room(conn, user_id, 1, limit)? {
        return Ok(ImportOutcome::Full);
    }
    let image_id = match share.image_id {
        Some(i) => Some(images::copy(conn, i, Some(user_id))?.id),
        None => None,
    };
    let id = custom::insert(
        conn,
        &NewCustomAchievement {
            owner_id: user_id,
            name: &share.name,
            description: &share.description,
            condition_type: &share.condition_type,
            condition: &share.condition,
            needs_edit: share.needs_edit,
            image_id,
            imported_from: Some(community_id),
            created_at: None,
            legacy_id: None,
            import_run_id: None,
            id: None,
        },
    )?;
    model::count_try(conn, community_id, user_id)?;
    Ok(ImportOutcome::Imported(id))
}

/// A shared goal's page: what it asks, the games and achievements it names,
/// and where the viewer would stand if they added it.
pub struct Detail {
    pub share: model::SharedDetail,
    /// `None` when the stored condition cannot be read.
    pub condition: Option<crate::achievements::Condition>,
    pub games: Vec<crate::models::game::NamedGame>,
    pub achievements: Vec<crate::models::game::NamedAchievement>,
    /// The viewer's progress before adding it: (current, target, met).
    pub progress: Option<(f64, f64, bool)>,
}

/// The page of shared goal `id` for `viewer` (a visitor sees no progress).
pub fn detail(conn: &mut PgConnection, id: i64, viewer: Option<i64>) -> Result<Detail, AppError> {
    let share = model::find_visible(conn, id, viewer)?.ok_or(AppError::NotFound)?;
    let condition = (!share.needs_edit)
        .then(|| crate::achievements::Condition::parse(&share.row.condition_type, &share.condition).ok())
        .flatten();
    let (games, achievements) = match &condition {
        Some(c) => (
            crate::models::game::named_games(conn, &c.appids())?,
            crate::models::game::named_achievements(conn, &c.achievements())?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    let progress = match (viewer, &condition) {
        (Some(v), Some(c)) => Some(custom::preview_progress(conn, v, c.kind(), &c.to_json())?),
        _ => None,
    };
    Ok(Detail { share, condition, games, achievements, progress })
}
