//! What every page's layout needs: the signed-in user for the navigation and
//! the flash messages left by the previous request.

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::http::header;
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
    /// No confirmed email address (accounts brought over from the old app
    /// may have none, or an unchecked one): the layout asks for one.
    pub needs_email: bool,
}

/// Layout data; every page template has a `ctx` field of this type.
#[derive(Clone, Default)]
pub struct PageContext {
    pub user: Option<NavUser>,
    pub flashes: Vec<Flash>,
    /// `None` on error pages, which have no forms.
    session: Option<Session>,
    /// Redis, where sessions live, is known to be down.
    sessions_down: bool,
}

impl PageContext {
    /// The context of a page shown to nobody in particular (error pages).
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// The session's CSRF token for a form. Made the first time a page shows
    /// a form, so pages without one (the home page for a visitor, a crawler's
    /// every hit) start no session in Redis.
    pub fn csrf_token(&self) -> String {
        let Some(session) = &self.session else { return String::new() };
        if self.sessions_down {
            // Storing a token would write a session while Redis is down (and
            // could replace the browser's cookie); the form's post gets the
            // "briefly unavailable" page instead.
            return String::new();
        }
        crate::auth::csrf::token(session).unwrap_or_else(|e| {
            // The form will then fail its CSRF check with a clear page.
            tracing::error!(error = %e, "cannot store a CSRF token");
            String::new()
        })
    }
}

impl FromRequest for PageContext {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let incoming = IncomingFlashMessages::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let user = crate::auth::session::resolve(&req).await?.map(|c| NavUser {
                username: c.user.username.clone(),
                is_admin: c.user.is_admin(),
                needs_email: c.user.email.is_none() || c.user.email_verified_at.is_none(),
            });
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
            let sessions_down = crate::auth::session::sessions_down(&req);
            Ok(PageContext { user, flashes, session: Some(req.get_session()), sessions_down })
        })
    }
}

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
