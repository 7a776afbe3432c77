//! The account page.

use actix_web::{web, HttpResponse};
use askama::Template;

use crate::auth::CurrentUser;
use crate::error::AppError;
use crate::layout::{render, PageContext};
use crate::models::user::User;

#[derive(Template)]
#[template(path = "account/overview.html")]
struct OverviewPage {
    ctx: PageContext,
    user: User,
}

async fn show(ctx: PageContext, current: CurrentUser) -> Result<HttpResponse, AppError> {
    render(&OverviewPage { ctx, user: current.user })
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/account").route(web::get().to(show)));
}
