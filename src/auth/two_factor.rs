//! The second sign-in step for accounts with TOTP.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::extractors;
use super::sign_in::{self, pending_second_factor, BAD_LOGIN};
use crate::audit::RequestMeta;
use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::{render, render_status, see_other};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "auth/two_factor.html")]
struct CodePage {
    ctx: PageContext,
    error: Option<String>,
}

async fn show(req: HttpRequest, ctx: PageContext) -> Result<HttpResponse, AppError> {
    if pending_second_factor(&req).is_none() {
        return Ok(see_other("/login"));
    }
    render(&CodePage { ctx, error: None })
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

async fn submit(
    req: HttpRequest,
    ctx: PageContext,
    form: web::Form<CodeForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Some(p) = pending_second_factor(&req) else {
        actix_web_flash_messages::FlashMessage::warning("Please sign in again.").send();
        return Ok(see_other("/login"));
    };
    match sign_in::second_factor_step(&state, &p, form.into_inner().code, &meta).await? {
        Some(s) => {
            // Signing in renews the session and drops the pending step.
            extractors::sign_in(&req, s.user_id, &s.id)?;
            Ok(see_other(&p.next))
        }
        None => render_status(
            StatusCode::UNAUTHORIZED,
            &CodePage { ctx, error: Some(format!("That code is not valid. {BAD_LOGIN}")) },
        ),
    }
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/login/2fa").route(web::get().to(show)).route(web::post().to(submit)));
}
