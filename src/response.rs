//! Building responses: a rendered page, a redirect, a spreadsheet cell.

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

/// A spreadsheet cell that would start a formula (`=`, `+`, `-`, `@`, a
/// tab or a carriage return: names come from Steam, and a game called
/// `=HYPERLINK(…)` must stay text) gets a leading apostrophe, as OWASP
/// advises for CSV files.
pub fn csv_cell(text: &str) -> std::borrow::Cow<'_, str> {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}").into(),
        _ => text.into(),
    }
}

#[cfg(test)]
mod csv_tests {
    use super::csv_cell;

    #[test]
    fn cells_that_would_start_a_formula_stay_text() {
        for risky in ["=HYPERLINK(\"http://x\")", "=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(csv_cell(risky), format!("'{risky}"));
        }
        for plain in ["Portal 2", "", "100%", "a=b"] {
            assert_eq!(csv_cell(plain), plain);
        }
    }
}
