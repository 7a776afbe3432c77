//! Who is asking: the extractors that resolve the signed-in user against
//! the session registry (`CurrentUser`, `MaybeUser`, `AdminUser`), and the
//! middleware that puts the user the layout shows on every page's request.

use std::future::Future;
use std::pin::Pin;

use actix_identity::{Identity, IdentityExt};
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use crate::db;
use crate::error::AppError;
use crate::layout::{NavUser, Viewer};
use crate::models::user::User;
use crate::state::AppState;
use crate::typed_session::{AppSession, SESSION_COOKIE};

/// The signed-in user of this request, checked against the registry.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub session_id: String,
    /// What the user's cached pages are valid under, read with the session.
    pub versions: crate::views::Versions,
}

/// Cached in the request so the layout and the handler share one look-up.
#[derive(Clone)]
struct Resolved(Option<CurrentUser>);

/// Finds the request's user: the identity and session id from the cookie
/// must name a session row that is neither revoked, expired nor idle, of an
/// active account. Anything else signs the browser out.
pub async fn resolve(req: &HttpRequest) -> Result<Option<CurrentUser>, AppError> {
    if let Some(Resolved(found)) = req.extensions().get::<Resolved>() {
        return Ok(found.clone());
    }
    let identity = req.get_identity().ok().and_then(|i| i.id().ok());
    let session = AppSession::of(req);
    let sid = session.session_id();
    let found = match (identity.and_then(|i| i.parse::<i64>().ok()), sid) {
        (Some(user_id), Some(sid)) => {
            let pool = AppState::of(req).pool.clone();
            db::run(&pool, move |conn| Ok(super::session::load_live(conn, user_id, &sid)?))
                .await?
                .map(|(s, user, versions)| CurrentUser { user, session_id: s.id, versions })
        }
        _ => None,
    };
    if found.is_none() && req.get_identity().is_ok() {
        // Revoked, expired or tampered: forget it so the browser is anonymous.
        session.sign_out();
    }
    req.extensions_mut().insert(Resolved(found.clone()));
    Ok(found)
}

/// Starts a signed-in session: a fresh session id (no fixation), the
/// identity, and the registry row's id.
pub fn sign_in(req: &HttpRequest, user_id: i64, session_id: &str) -> Result<(), AppError> {
    let session = AppSession::of(req);
    session.sign_in(session_id)?;
    Identity::login(&req.extensions(), user_id.to_string())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("identity: {e}")))?;
    Ok(())
}

/// Redis, where sessions live, is down, and not merely restarting: early
/// in an outage this waits for it to answer (see `cache::RIDE_THROUGH`),
/// as a session read would. A browser with no session cookie reads no
/// session, and would otherwise get a form with no CSRF token, whose post
/// then fails, for a restart of a second.
pub async fn sessions_down(req: &HttpRequest) -> bool {
    match req.app_data::<web::Data<AppState>>() {
        Some(state) => !state.redis.ride_through().await,
        None => false,
    }
}

/// The registry id of this browser's session, if signed in.
pub fn session_id(req: &HttpRequest) -> Option<String> {
    AppSession::of(req).session_id()
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match resolve(&req).await? {
                Some(u) => Ok(u),
                // A browser that came with a session while Redis is down is
                // probably signed in: "back soon", not "sign in".
                None if req.cookie(SESSION_COOKIE).is_some() && sessions_down(&req).await => {
                    Err(AppError::SessionsUnavailable)
                }
                None => {
                    let next = match req.query_string() {
                        "" => req.path().to_owned(),
                        q => format!("{}?{}", req.path(), q),
                    };
                    Err(AppError::LoginRequired { next: next.into() })
                }
            }
        })
    }
}

/// The signed-in user, if any.
pub struct MaybeUser(pub Option<CurrentUser>);

impl MaybeUser {
    /// The key of a cached page anyone may see, as this viewer sees it: a
    /// user's versions come with the session; a visitor (user 0) costs one
    /// small query.
    pub async fn view_key(
        &self,
        state: &AppState,
        page: &'static str,
        params: impl Into<String>,
    ) -> Result<crate::views::ViewKey, AppError> {
        let (user_id, versions) = match &self.0 {
            Some(current) => (current.user.id, current.versions),
            None => (0, db::run(&state.pool, |conn| Ok(crate::versions::visitor_versions(conn)?)).await?),
        };
        Ok(crate::views::ViewKey::new(page, user_id, versions, params))
    }

    /// The signed-in user's id.
    pub fn id(&self) -> Option<i64> {
        self.0.as_ref().map(|c| c.user.id)
    }
}

impl FromRequest for MaybeUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { Ok(MaybeUser(resolve(&req).await?)) })
    }
}

/// A signed-in admin with two-factor authentication; anyone else gets a 404
/// (the admin pages do not admit they exist) or, for an admin without 2FA,
/// the reason.
pub struct AdminUser(pub CurrentUser);

impl FromRequest for AdminUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let current = CurrentUser::from_request(req, payload);
        Box::pin(async move {
            let current = current.await?;
            if !current.user.is_admin() {
                return Err(AppError::NotFound);
            }
            if !current.user.has_totp() {
                return Err(AppError::Denied(
                    "The admin pages need two-factor authentication: enrol it on your security page first.".into(),
                ));
            }
            Ok(AdminUser(current))
        })
    }
}

/// Paths that never show a page, so never need the user: static files,
/// probes and metrics answer without a look-up.
fn needs_no_user(path: &str) -> bool {
    path.starts_with("/static/") || matches!(path, "/healthz" | "/readyz" | "/metrics" | "/favicon.ico")
}

/// Resolves the signed-in user once per request and puts what the layout
/// shows of them on the request, so pages and error pages render the right
/// navigation without looking the user up themselves. A failed look-up
/// (the database is down) leaves nothing there: the handler's own
/// extractor then reports it.
pub async fn load_viewer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if !needs_no_user(req.path()) {
        if let Ok(found) = resolve(req.request()).await {
            let sessions_down = sessions_down(req.request()).await;
            let viewer = Viewer { user: found.map(|c| nav_user(&c.user)), sessions_down };
            req.extensions_mut().insert(viewer);
        }
    }
    next.call(req).await
}

/// What the navigation shows of a user.
fn nav_user(user: &User) -> NavUser {
    NavUser {
        username: user.username.clone(),
        is_admin: user.is_admin(),
        needs_email: user.email.is_none() || user.email_verified_at.is_none(),
        email_pending: user.pending_email.is_some(),
    }
}
