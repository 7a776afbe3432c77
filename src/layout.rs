//! What every page's layout needs: the signed-in user for the navigation and
//! the flash messages left by the previous request.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use actix_web_flash_messages::{IncomingFlashMessages, Level};
use askama::Template;

use crate::error::AppError;

/// One message shown once at the top of the next page.
#[derive(Debug, Clone)]
pub struct Flash {
    /// CSS modifier: `info`, `success`, `warning` or `error`.
    pub level: &'static str,
    pub text: String,
}

/// The signed-in user as the layout shows them.
#[derive(Debug, Clone)]
pub struct NavUser {
    pub username: String,
    pub is_admin: bool,
}

/// Layout data; every page template has a `ctx` field of this type.
#[derive(Debug, Clone, Default)]
pub struct PageContext {
    pub user: Option<NavUser>,
    pub flashes: Vec<Flash>,
}

impl PageContext {
    /// The context of a page shown to nobody in particular (error pages).
    pub fn anonymous() -> Self {
        Self::default()
    }
}

impl FromRequest for PageContext {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let incoming = IncomingFlashMessages::from_request(req, payload);
        Box::pin(async move {
            let flashes = incoming
                .await?
                .iter()
                .map(|m| Flash {
                    level: match m.level() {
                        Level::Success => "success",
                        Level::Warning => "warning",
                        Level::Error => "error",
                        _ => "info",
                    },
                    text: m.content().to_owned(),
                })
                .collect();
            Ok(PageContext { user: None, flashes })
        })
    }
}

/// Renders a page template into a 200 HTML response.
pub fn render(page: &impl Template) -> Result<HttpResponse, AppError> {
    let body = page
        .render()
        .map_err(|e| AppError::Internal(anyhow::Error::new(e).context("rendering a template")))?;
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(body))
}
