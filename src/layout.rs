//! What every page's layout needs: the signed-in user for the navigation and
//! the flash messages left by the previous request.

use std::future::Future;
use std::pin::Pin;

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use actix_web_flash_messages::{IncomingFlashMessages, Level};

use crate::typed_session::AppSession;

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
    /// An address is waiting for its confirmation link (a sign-up through
    /// Steam, or a change).
    pub email_pending: bool,
}

/// Layout data; every page template has a `ctx` field of this type.
/// The signed-in user as the layout shows them, with the state of the
/// session store; put on each request by `auth::extractors::load_viewer`.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    /// `None` for a visitor.
    pub user: Option<NavUser>,
    /// Redis, where sessions live, is known to be down.
    pub sessions_down: bool,
}

#[derive(Clone, Default)]
pub struct PageContext {
    pub user: Option<NavUser>,
    pub flashes: Vec<Flash>,
    /// `None` on error pages, which have no forms.
    session: Option<Session>,
    /// Redis, where sessions live, is known to be down.
    sessions_down: bool,
    /// The request's path, for `aria-current` in the navigation.
    path: String,
}

impl PageContext {
    /// The context of a page shown to nobody in particular (error pages).
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// The session's CSRF token for a form. Made the first time a page shows
    /// a form, so pages without one (the home page for a visitor, a crawler's
    /// every hit) start no session in Redis.
    /// Whether the page is `section` or under it (`/library` for
    /// `/library/400`), to mark the navigation's current entry.
    pub fn is_current(&self, section: &str) -> bool {
        self.path == section || self.path.strip_prefix(section).is_some_and(|rest| rest.starts_with('/'))
    }

    /// Whether the page is exactly `path` (the settings menu's entries).
    pub fn is_page(&self, path: &str) -> bool {
        self.path == path
    }

    /// The context of `req` for the signed-in user `viewer`, for error
    /// pages rendered outside a handler.
    pub fn for_request(viewer: Viewer, req: &HttpRequest) -> Self {
        PageContext {
            user: viewer.user,
            flashes: Vec::new(),
            session: Some(req.get_session()),
            sessions_down: viewer.sessions_down,
            path: req.path().to_owned(),
        }
    }

    pub fn csrf_token(&self) -> String {
        let Some(session) = &self.session else { return String::new() };
        let session = AppSession::from_session(session.clone());
        if self.sessions_down {
            // Storing a token would write a session while Redis is down (and
            // could replace the browser's cookie). A session loaded before
            // the outage keeps its token, so a form shown as Redis restarts
            // still posts once it is back; without one, the form's post gets
            // the "briefly unavailable" page.
            return session.csrf_token().unwrap_or_default();
        }
        session.csrf_token_or_create().unwrap_or_else(|e| {
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
        let viewer = req.extensions().get::<Viewer>().cloned();
        let session = req.get_session();
        let path = req.path().to_owned();
        Box::pin(async move {
            // Missing only when the user could not be looked up: the
            // database is down.
            let viewer = viewer.ok_or_else(|| {
                actix_web::error::ErrorServiceUnavailable("the signed-in user could not be looked up")
            })?;
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
            Ok(PageContext {
                user: viewer.user,
                flashes,
                session: Some(session),
                sessions_down: viewer.sessions_down,
                path,
            })
        })
    }
}
