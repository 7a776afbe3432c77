//! Every key Questline keeps in a browser's session, owned by one type, so
//! no other file spells a key as a string.

use actix_session::{Session, SessionExt};
use actix_web::HttpRequest;
use serde::{Deserialize, Serialize};

/// The synchronizer CSRF token.
const CSRF: &str = "csrf";
/// The id of this browser's row in the `user_sessions` registry.
const SID: &str = "sid";
/// The password step of a sign-in passed; the code is still to come.
const PENDING_SECOND_FACTOR: &str = "pending_2fa";
/// When the password was last confirmed ("sudo mode").
const REAUTHENTICATED_AT: &str = "reauth_at";

/// Where actix-identity keeps the signed-in user's id.
const IDENTITY: &str = "actix_identity.user_id";

/// Whether a session holding `key` belongs to a signed-in browser (the
/// session store gives those their long life).
pub fn marks_signed_in(key: &str) -> bool {
    key == SID || key == IDENTITY
}

/// A sign-in whose password was right, waiting for its second factor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingSecondFactor {
    pub user_id: i64,
    pub remember: bool,
    /// Where to go once the code is accepted (already checked as local).
    pub next: String,
    /// Unix seconds when the password was accepted.
    pub started: i64,
}

/// A browser's session, with one method per thing the app keeps in it.
pub struct AppSession(Session);

/// A value could not be stored in the session (it did not serialise).
#[derive(Debug, thiserror::Error)]
#[error("storing {what} in the session: {message}")]
pub struct SessionWriteError {
    what: &'static str,
    message: String,
}

fn stored(what: &'static str, e: impl std::fmt::Display) -> SessionWriteError {
    SessionWriteError { what, message: e.to_string() }
}

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "questline_session";

impl AppSession {
    /// The session of `req`.
    pub fn of(req: &HttpRequest) -> Self {
        AppSession(req.get_session())
    }

    /// Wraps a session already at hand (middleware, the page context).
    pub fn from_session(session: Session) -> Self {
        AppSession(session)
    }

    /// The CSRF token, if one was made.
    pub fn csrf_token(&self) -> Option<String> {
        self.0.get(CSRF).ok().flatten()
    }

    /// Stores a new CSRF token.
    pub fn set_csrf_token(&self, token: &str) -> Result<(), SessionWriteError> {
        self.0.insert(CSRF, token).map_err(|e| stored("the CSRF token", e))
    }

    /// The registry id of the signed-in browser, if any.
    /// The session's CSRF token, made and stored on first use (so
    /// anonymous visitors who never see a form get no session at all).
    pub fn csrf_token_or_create(&self) -> Result<String, SessionWriteError> {
        if let Some(t) = self.csrf_token() {
            return Ok(t);
        }
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        let t = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
        self.set_csrf_token(&t)?;
        Ok(t)
    }

    pub fn session_id(&self) -> Option<String> {
        self.0.get(SID).ok().flatten()
    }

    /// Starts a signed-in session: a fresh session id (no fixation), no
    /// token of the anonymous session carried over, and the registry id.
    /// The identity itself is set by the caller, which has the request.
    pub fn sign_in(&self, session_id: &str) -> Result<(), SessionWriteError> {
        self.0.renew();
        self.0.remove(CSRF);
        self.0.remove(PENDING_SECOND_FACTOR);
        self.0.insert(SID, session_id).map_err(|e| stored("the session id", e))
    }

    /// Ends the session: everything in it goes, and the cookie with it.
    pub fn sign_out(&self) {
        self.0.purge();
    }

    /// Remembers a sign-in waiting for its code, under a new session id.
    pub fn begin_second_factor(&self, pending: &PendingSecondFactor) -> Result<(), SessionWriteError> {
        self.0.renew();
        self.0.insert(PENDING_SECOND_FACTOR, pending).map_err(|e| stored("the sign-in step", e))
    }

    /// The sign-in waiting for its code, if any.
    pub fn pending_second_factor(&self) -> Option<PendingSecondFactor> {
        self.0.get(PENDING_SECOND_FACTOR).ok().flatten()
    }

    /// Records that the password (and code) were confirmed just now.
    pub fn mark_reauthenticated(&self, at_unix: i64) -> Result<(), SessionWriteError> {
        self.0.insert(REAUTHENTICATED_AT, at_unix).map_err(|e| stored("the re-authentication time", e))
    }

    /// When the password was last confirmed, in Unix seconds.
    pub fn reauthenticated_at(&self) -> Option<i64> {
        self.0.get(REAUTHENTICATED_AT).ok().flatten()
    }
}
