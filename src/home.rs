//! The landing page.

use actix_web::{web, HttpResponse};
use askama::Template;

use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::render;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    ctx: PageContext,
}

async fn home(ctx: PageContext) -> Result<HttpResponse, AppError> {
    if ctx.user.is_some() {
        return Ok(crate::response::see_other("/dashboard"));
    }
    render(&HomePage { ctx })
}

/// Browsers and crawlers ask for `/favicon.ico` whatever the page says: the
/// SVG icon answers it.
async fn favicon(state: web::Data<AppState>) -> Result<actix_files::NamedFile, AppError> {
    let file = actix_files::NamedFile::open_async(state.settings.static_dir.join("favicon.svg"))
        .await
        .map_err(|_| AppError::NotFound)?;
    Ok(file.set_content_type("image/svg+xml".parse().expect("a valid MIME type")))
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(home)))
        .service(web::resource("/favicon.ico").route(web::get().to(favicon)));
}
