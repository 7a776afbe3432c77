//! Your data: download everything of yours, or delete your account. Both
//! need the password again (a borrowed, signed-in browser must not be
//! enough to take or destroy an account's data).

use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use serde::Deserialize;

use super::service;
use crate::audit::RequestMeta;
use crate::auth::extractors::CurrentUser;
use crate::auth::reauth::require_recent_auth;
use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::{render, see_other};
use crate::state::AppState;
use crate::typed_session::AppSession;

const PAGE: &str = "/account/data";

#[derive(Template)]
#[template(path = "account/data.html")]
struct DataPage {
    ctx: PageContext,
    username: String,
}

async fn show(ctx: PageContext, current: CurrentUser) -> Result<HttpResponse, AppError> {
    render(&DataPage { ctx, username: current.user.username })
}

async fn export(
    req: HttpRequest,
    current: CurrentUser,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    require_recent_auth(&req, PAGE)?;
    let archive = service::export_data(&state, &current.user, &meta).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(archive.filename)],
        })
        // Personal data: never kept by a shared cache or the browser's.
        .insert_header(("Cache-Control", "no-store"))
        .body(archive.bytes))
}

#[derive(Deserialize)]
struct DeleteForm {
    confirm: String,
}

async fn delete(
    req: HttpRequest,
    current: CurrentUser,
    form: web::Form<DeleteForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    require_recent_auth(&req, PAGE)?;
    if form.confirm.trim() != current.user.username {
        FlashMessage::error("Type your username exactly to confirm. Nothing was deleted.").send();
        return Ok(see_other(PAGE));
    }
    let deleted = service::delete_account(&state, &current.user, &meta).await?;
    AppSession::of(&req).sign_out();
    FlashMessage::success(if deleted.shared_kept > 0 {
        "Your account is deleted. The goals you shared stay in the community, shown as by a deleted user."
    } else {
        "Your account is deleted."
    })
    .send();
    Ok(see_other("/"))
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(PAGE).route(web::get().to(show)))
        .service(web::resource("/account/data/export").route(web::get().to(export)))
        .service(web::resource("/account/delete").route(web::post().to(delete)));
}
