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
/// A sign-in through Steam this browser started, until Steam answers.
const PENDING_STEAM: &str = "steam_openid";
/// A SteamID proven by a visitor with no account yet: sign-up continues.
const STEAM_SIGN_UP: &str = "steam_signup";

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
    /// How the first step was passed (`password`, `steam`), for the audit.
    #[serde(default = "password_method")]
    pub method: String,
}

fn password_method() -> String {
    "password".into()
}

/// What a sign-in through Steam is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SteamIntent {
    /// Sign in (or, with no account for the SteamID, sign up).
    SignIn,
    /// Link (or prove) the SteamID on the signed-in account.
    Link,
    /// Confirm who is at the keyboard before a sensitive change.
    Reauth,
}

/// A sign-in through Steam on its way: bound to this browser's session by
/// `state`, which the return address carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingSteam {
    pub state: String,
    /// The exact `openid.return_to` sent.
    pub return_to: String,
    pub intent: SteamIntent,
    /// The signed-in user who started it (link and reauth).
    pub user_id: Option<i64>,
    /// Where to go after (already checked as local).
    pub next: String,
    pub remember: bool,
    /// Unix seconds when it started.
    pub started: i64,
}

/// A SteamID a visitor proved, waiting for the rest of their sign-up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SteamSignUp {
    pub steam_id: u64,
    pub persona: Option<String>,
    pub avatar: Option<String>,
    /// A proven holder-less SteamID an unproven link names (its owner may
    /// want to sign in with a password and prove it instead).
    pub held_unproven: bool,
    pub remember: bool,
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
        self.0.remove(STEAM_SIGN_UP);
        // Nothing proven for whoever used this browser before carries over
        // to the account signed in now.
        self.0.remove(REAUTHENTICATED_AT);
        self.0.remove(PENDING_STEAM);
        self.0.insert(SID, session_id).map_err(|e| stored("the session id", e))
    }

    /// Ends the session: everything in it goes, and the cookie with it.
    pub fn sign_out(&self) {
        self.0.purge();
    }

    /// Remembers a sign-in waiting for its code, under a new session id.
    pub fn begin_second_factor(&self, pending: &PendingSecondFactor) -> Result<(), SessionWriteError> {
        self.0.renew();
        self.0.remove(REAUTHENTICATED_AT);
        self.0.remove(PENDING_STEAM);
        self.0.insert(PENDING_SECOND_FACTOR, pending).map_err(|e| stored("the sign-in step", e))
    }

    /// The sign-in waiting for its code, if any.
    pub fn pending_second_factor(&self) -> Option<PendingSecondFactor> {
        self.0.get(PENDING_SECOND_FACTOR).ok().flatten()
    }

    /// Remembers a sign-in through Steam until Steam answers.
    pub fn begin_steam(&self, pending: &PendingSteam) -> Result<(), SessionWriteError> {
        self.0.insert(PENDING_STEAM, pending).map_err(|e| stored("the Steam sign-in", e))
    }

    /// The sign-in through Steam this browser started, taken out: each is
    /// answered once, whatever the answer.
    pub fn take_steam(&self) -> Option<PendingSteam> {
        self.0.remove_as::<PendingSteam>(PENDING_STEAM).and_then(Result::ok)
    }

    /// Keeps a proven SteamID for the sign-up form.
    pub fn begin_steam_sign_up(&self, pending: &SteamSignUp) -> Result<(), SessionWriteError> {
        self.0.insert(STEAM_SIGN_UP, pending).map_err(|e| stored("the Steam sign-up", e))
    }

    /// The proven SteamID waiting for its sign-up, if any.
    pub fn steam_sign_up(&self) -> Option<SteamSignUp> {
        self.0.get(STEAM_SIGN_UP).ok().flatten()
    }

    /// Drops the waiting sign-up (done, or abandoned).
    pub fn end_steam_sign_up(&self) {
        self.0.remove(STEAM_SIGN_UP);
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
