//! The landing page.

use actix_web::{web, HttpResponse};
use askama::Template;

use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::render;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    ctx: PageContext,
}

async fn home(ctx: PageContext) -> Result<HttpResponse, AppError> {
    render(&HomePage { ctx })
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(home)));
}
