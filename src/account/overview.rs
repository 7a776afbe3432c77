//! The account page.

use actix_web::{web, HttpResponse};
use askama::Template;

use super::view::AccountView;
use crate::auth::extractors::CurrentUser;
use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::render;

#[derive(Template)]
#[template(path = "account/overview.html")]
struct OverviewPage {
    ctx: PageContext,
    user: AccountView,
}

async fn show(ctx: PageContext, current: CurrentUser) -> Result<HttpResponse, AppError> {
    render(&OverviewPage { ctx, user: AccountView::from(&current.user) })
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/account").route(web::get().to(show)));
}
