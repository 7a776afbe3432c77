//! `POST /pins`: pin or unpin an achievement or a goal, then back to the
//! page the button was on.

use actix_web::{web, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use serde::Deserialize;

use super::{Pinned, Target};
use crate::auth::extractors::CurrentUser;
use crate::auth::redirect::safe_next;
use crate::db;
use crate::error::AppError;
use crate::response::see_other;
use crate::state::AppState;

#[derive(Deserialize)]
struct PinForm {
    achievement: Option<i64>,
    goal: Option<i64>,
    /// `pin` or `unpin`.
    action: String,
    next: Option<String>,
}

async fn pin(
    current: CurrentUser,
    form: web::Form<PinForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let target = match (form.achievement, form.goal) {
        (Some(id), None) => Target::Achievement(id),
        (None, Some(id)) => Target::Goal(id),
        _ => return Err(AppError::BadRequest("Pin one achievement or one goal.".into())),
    };
    let user_id = current.user.id;
    let back = safe_next(&state.settings.public_base_url, form.next.as_deref());
    match form.action.as_str() {
        "pin" => match db::run(&state.pool, move |conn| Ok(super::pin(conn, user_id, target)?)).await? {
            Pinned::Done => FlashMessage::success("Pinned: it shows on your dashboard.").send(),
            Pinned::Full => FlashMessage::error(format!(
                "You have {} pins already: unpin one from the dashboard first.",
                super::MAX_PINS
            ))
            .send(),
            Pinned::NotFound => return Err(AppError::NotFound),
        },
        "unpin" => {
            db::run(&state.pool, move |conn| Ok(super::unpin(conn, user_id, target)?)).await?;
            FlashMessage::info("Unpinned.").send();
        }
        _ => return Err(AppError::BadRequest("Unknown pin action.".into())),
    }
    Ok(see_other(&back))
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/pins").route(web::post().to(pin)));
}
