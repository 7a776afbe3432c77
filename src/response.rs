//! Building responses: a rendered page, or a redirect.

use actix_web::http::header;
use actix_web::HttpResponse;
use askama::Template;

use crate::error::AppError;

/// Renders a page template into a 200 HTML response.
pub fn render(page: &impl Template) -> Result<HttpResponse, AppError> {
    let body = page.render().map_err(|e| AppError::Internal(anyhow::Error::new(e).context("rendering a template")))?;
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(body))
}

/// Renders a page template with a status other than 200 (a form with errors
/// is 422, so scripts and tests can tell it from success).
pub fn render_status(status: actix_web::http::StatusCode, page: &impl Template) -> Result<HttpResponse, AppError> {
    let mut res = render(page)?;
    *res.status_mut() = status;
    Ok(res)
}

/// Post/redirect/get: 303 to `location`.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}
