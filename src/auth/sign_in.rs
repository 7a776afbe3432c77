//! Signing in, as use cases: the password step, the second step, and the
//! failure count (with its lockout) shared with every other password check.

use actix_web::HttpRequest;
use chrono::{Duration, Utc};
use diesel::prelude::*;
use secrecy::SecretString;

use super::session::UserSession;
use super::totp;
use crate::audit::{AuditEvent, RequestMeta};
use crate::db;
use crate::email::messages::{AccountLocked, NewDeviceLogin};
use crate::error::AppError;
use crate::models::user::{Status, User};
use crate::ratelimit::{self, PerIp};
use crate::state::AppState;
use crate::typed_session::{AppSession, PendingSecondFactor};

/// Consecutive failures that lock an account.
pub const LOCKOUT_THRESHOLD: i32 = 5;
/// How long a lock lasts.
pub const LOCKOUT_MINUTES: i64 = 15;

/// The one answer for every wrong login, so it reveals nothing about which
/// accounts exist or are locked.
pub const BAD_LOGIN: &str = "That login and password do not match an account, or the account is locked.";

/// What a sign-in attempt came to, decided in one transaction.
pub enum Outcome {
    Success {
        user_id: i64,
        session: UserSession,
    },
    /// Password right; a code from the authenticator app comes next.
    SecondFactor {
        user_id: i64,
    },
    Unverified,
    Failed,
}

/// The password step: one argon2 run whatever the account, one transaction
/// for the decision, and the attempt counted in the metrics.
pub async fn password_step(
    state: &AppState,
    login: &str,
    password: SecretString,
    remember: bool,
    meta: &RequestMeta,
) -> Result<Outcome, AppError> {
    ratelimit::per_ip(&state.redis, &state.settings, PerIp::Login, meta).await?;
    let lookup = login.to_owned();
    let user = db::run(&state.pool, move |conn| Ok(User::find_by_login(conn, &lookup)?)).await?;
    // Verified even when there is no account or it is locked, so every
    // answer costs one argon2 run.
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let legacy = stored.as_deref().is_some_and(crate::infra::legacy_hash::is_legacy);
    let password_ok = state.hasher.verify(stored, password.clone()).await?;
    // A legacy Werkzeug hash is replaced by argon2id at its first success.
    let upgraded = if password_ok && legacy { Some(state.hasher.hash(password).await?) } else { None };

    let meta = meta.clone();
    let outcome = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| decide(conn, user, password_ok, upgraded, remember, &meta))
    })
    .await?;
    state.jobs.notify();
    state.metrics.login(match &outcome {
        Outcome::Success { .. } => "success",
        Outcome::SecondFactor { .. } => "second_factor",
        Outcome::Unverified => "unverified",
        Outcome::Failed => "failure",
    });
    Ok(outcome)
}

fn decide(
    conn: &mut PgConnection,
    user: Option<User>,
    password_ok: bool,
    upgraded_hash: Option<String>,
    remember: bool,
    meta: &RequestMeta,
) -> Result<Outcome, AppError> {
    let now = Utc::now();
    let Some(user) = user else {
        AuditEvent::new("auth", "login", meta).failed("unknown account").record(conn)?;
        return Ok(Outcome::Failed);
    };
    // Re-read under a row lock: concurrent failures must all count.
    let user = User::lock_for_update(conn, user.id)?;
    let audit = || AuditEvent::new("auth", "login", meta).actor(user.id).target_user(user.id, &user.username);
    let locked = user.locked_until.is_some_and(|t| t > now);
    if locked {
        audit().failed("account locked").record(conn)?;
        return Ok(Outcome::Failed);
    }
    if !password_ok {
        record_failure(conn, &user, meta, "wrong password")?;
        return Ok(Outcome::Failed);
    }
    if user.status != Status::Active {
        audit().failed("account locked or disabled by an admin").record(conn)?;
        return Ok(Outcome::Failed);
    }
    if let Some(hash) = upgraded_hash {
        User::set_password_hash(conn, user.id, &hash)?;
        audit().details(serde_json::json!({ "password_hash": "legacy hash replaced by argon2id" })).record(conn)?;
    }
    // Accounts brought over from the old app never had their address
    // checked; they may sign in and are asked to verify it there.
    if user.email.is_some() && user.email_verified_at.is_none() && user.legacy_username.is_none() {
        audit().failed("email not verified").record(conn)?;
        return Ok(Outcome::Unverified);
    }
    if user.has_totp() {
        return Ok(Outcome::SecondFactor { user_id: user.id });
    }
    let session = complete(conn, &user, remember, meta, "password")?;
    Ok(Outcome::Success { user_id: user.id, session })
}

/// Counts a failed attempt (wrong password or wrong code) against `user`,
/// locking the account and emailing its owner at the threshold. `user` must
/// have been read `FOR UPDATE` in the caller's transaction.
pub fn record_failure(conn: &mut PgConnection, user: &User, meta: &RequestMeta, reason: &str) -> Result<(), AppError> {
    let now = Utc::now();
    let failures = user.failed_logins + 1;
    let audit = AuditEvent::new("auth", "login", meta).actor(user.id).target_user(user.id, &user.username);
    if failures < LOCKOUT_THRESHOLD {
        User::set_failed_logins(conn, user.id, failures)?;
        audit.failed(reason).record(conn)?;
        return Ok(());
    }
    User::lock_out(conn, user.id, now + Duration::minutes(LOCKOUT_MINUTES))?;
    audit.failed(reason).record(conn)?;
    AuditEvent::new("auth", "lockout", meta)
        .target_user(user.id, &user.username)
        .details(serde_json::json!({ "minutes": LOCKOUT_MINUTES, "failures": failures }))
        .record(conn)?;
    if let Some(email) = &user.email {
        AccountLocked {
            username: user.username.clone(),
            minutes: LOCKOUT_MINUTES,
            ip: meta.ip.clone().unwrap_or_else(|| "an unknown address".into()),
        }
        .queue(conn, email)?;
    }
    Ok(())
}

/// Counts a password (or code) check made outside the sign-in form
/// (re-authentication, turning 2FA off) toward the same lockout as sign-in:
/// a wrong answer is a failure exactly as at sign-in (audit entry, lock and
/// mail at the threshold), a right one clears the count, and a locked
/// account is refused whatever it answers. Returns whether the check passed.
pub fn account_password_check(
    conn: &mut PgConnection,
    user_id: i64,
    correct: bool,
    meta: &RequestMeta,
) -> Result<bool, AppError> {
    let user = User::lock_for_update(conn, user_id)?;
    if user.locked_until.is_some_and(|t| t > Utc::now()) {
        AuditEvent::new("auth", "login", meta)
            .actor(user.id)
            .target_user(user.id, &user.username)
            .failed("account locked")
            .record(conn)?;
        return Ok(false);
    }
    if !correct {
        record_failure(conn, &user, meta, "wrong password or code")?;
        return Ok(false);
    }
    if user.failed_logins != 0 {
        User::set_failed_logins(conn, user.id, 0)?;
    }
    Ok(true)
}

/// Finishes a successful sign-in: clears failures, registers the session,
/// notices a new device, writes the audit entry.
pub fn complete(
    conn: &mut PgConnection,
    user: &User,
    remember: bool,
    meta: &RequestMeta,
    method: &str,
) -> Result<UserSession, AppError> {
    let now = Utc::now();
    User::record_sign_in(conn, user.id, now)?;
    let session = UserSession::create(conn, user.id, remember, meta)?;
    let new_device = super::session::remember_device(conn, user.id, meta.user_agent.as_deref())?;
    AuditEvent::new("auth", "login", meta)
        .actor(user.id)
        .target_user(user.id, &user.username)
        .details(serde_json::json!({ "remember": remember, "new_device": new_device, "method": method }))
        .record(conn)?;
    // The very first sign-in is from a new device by definition; no notice.
    if new_device && user.last_login_at.is_some() {
        if let Some(email) = &user.email {
            NewDeviceLogin {
                username: user.username.clone(),
                device: session.device(),
                ip: meta.ip.clone().unwrap_or_else(|| "unknown".into()),
                when: now.format("%Y-%m-%d %H:%M UTC").to_string(),
            }
            .queue(conn, email)?;
        }
    }
    Ok(session)
}

/// The password step stays good this long.
const PENDING_SECS: i64 = 300;

/// Remembers that the password step passed. A new session id here, and
/// again once the code is accepted.
/// `method` names how the first step was passed (`password`, `steam`).
pub fn begin_second_factor(
    req: &HttpRequest,
    user_id: i64,
    remember: bool,
    next: &str,
    method: &str,
) -> Result<(), AppError> {
    Ok(AppSession::of(req).begin_second_factor(&PendingSecondFactor {
        user_id,
        remember,
        next: next.to_owned(),
        started: Utc::now().timestamp(),
        method: method.to_owned(),
    })?)
}

/// The password step that passed, while it is still good.
pub fn pending_second_factor(req: &HttpRequest) -> Option<PendingSecondFactor> {
    let p = AppSession::of(req).pending_second_factor()?;
    (Utc::now().timestamp() - p.started < PENDING_SECS).then_some(p)
}

/// The second step: a code from the app or a backup code, counted toward
/// the lockout like a wrong password. The new session when accepted.
pub async fn second_factor_step(
    state: &AppState,
    pending: &PendingSecondFactor,
    code: String,
    meta: &RequestMeta,
) -> Result<Option<UserSession>, AppError> {
    ratelimit::per_ip(&state.redis, &state.settings, PerIp::Login, meta).await?;
    let cipher = state.cipher.clone();
    let (user_id, remember) = (pending.user_id, pending.remember);
    let method = format!("{}+totp", pending.method);
    let meta = meta.clone();
    let result = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let user = User::lock_for_update(conn, user_id)?;
            if user.locked_until.is_some_and(|t| t > Utc::now()) {
                AuditEvent::new("auth", "login", &meta)
                    .target_user(user.id, &user.username)
                    .failed("account locked")
                    .record(conn)?;
                return Ok(None);
            }
            if !totp::verify_second_factor(conn, &cipher, &user, &code)? {
                record_failure(conn, &user, &meta, "wrong second-factor code")?;
                return Ok(None);
            }
            Ok(Some(complete(conn, &user, remember, &meta, &method)?))
        })
    })
    .await?;
    state.jobs.notify();
    Ok(result)
}

/// Ends the browser's session in the registry, with its audit entry.
pub async fn sign_out(state: &AppState, user: &User, session_id: String, meta: &RequestMeta) -> Result<(), AppError> {
    let (user_id, username, meta) = (user.id, user.username.clone(), meta.clone());
    db::run(&state.pool, move |conn| {
        UserSession::revoke(conn, user_id, &session_id)?;
        AuditEvent::new("auth", "logout", &meta).actor(user_id).target_user(user_id, &username).record(conn)?;
        Ok(())
    })
    .await
}
