//! Community moderation: hide a shared achievement from the list (and its
//! image from visitors), or restore it.

use actix_web::{web, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;

use crate::achievements::shared::{self as community, model::ModerationRow};
use crate::audit::RequestMeta;
use crate::auth::extractors::AdminUser;
use crate::db::{self};
use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::{render, see_other};
use crate::state::AppState;

/// One shared achievement as moderators see it, hidden ones included.
#[derive(Template)]
#[template(path = "admin/community.html")]
struct ModerationPage {
    ctx: PageContext,
    rows: Vec<ModerationRow>,
}

async fn list(ctx: PageContext, _admin: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let rows = db::run(pool, |conn| Ok(community::model::moderation_list(conn)?)).await?;
    render(&ModerationPage { ctx, rows })
}

async fn set_hidden(
    admin: AdminUser,
    path: web::Path<(i64, String)>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let (id, action) = path.into_inner();
    let hide = match action.as_str() {
        "hide" => true,
        "restore" => false,
        _ => return Err(AppError::NotFound),
    };
    super::service::set_shared_hidden(pool, admin.0.user.id, id, hide, &meta).await?;
    FlashMessage::success(if hide { "Hidden from the community." } else { "Restored to the community." }).send();
    Ok(see_other("/admin/community"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/community").route(web::get().to(list)))
        .service(web::resource("/admin/community/{id}/{action}").route(web::post().to(set_hidden)));
}
