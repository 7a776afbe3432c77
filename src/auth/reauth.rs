//! "Sudo mode": sensitive changes (password, email, 2FA, admin actions)
//! need the password again within the last ten minutes.

use actix_web::HttpRequest;
use chrono::Utc;

use crate::error::AppError;
use crate::typed_session::AppSession;

/// How long a re-authentication covers sensitive changes.
pub const REAUTH_SECS: i64 = 600;

/// Refuses unless the password was confirmed in the last ten minutes: after
/// re-authenticating, a GET comes back to itself and a form post to `back`
/// (a post cannot be replayed by a redirect).
pub fn require_recent_auth(req: &HttpRequest, back: &str) -> Result<(), AppError> {
    let at = AppSession::of(req).reauthenticated_at();
    if at.is_some_and(|t| Utc::now().timestamp() - t < REAUTH_SECS) {
        return Ok(());
    }
    let next = if req.method() == actix_web::http::Method::GET { req.path() } else { back };
    Err(AppError::ReauthRequired { next: next.to_owned().into() })
}
