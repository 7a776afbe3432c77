//! Signing in and out, with per-account lockout and per-IP limits.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use chrono::{Duration, Utc};
use diesel::prelude::*;
use secrecy::SecretString;
use serde::Deserialize;

use super::password::PasswordHasher;
use super::session::{self, CurrentUser, UserSession};
use crate::audit::{AuditEvent, RequestMeta};
use crate::cache::Redis;
use crate::db::{self, PgPool};
use crate::email::messages::{AccountLocked, NewDeviceLogin};
use crate::email::worker::OutboxSignal;
use crate::error::AppError;
use crate::layout::{render, render_status, see_other, PageContext};
use crate::models::user::{Status, User};
use crate::ratelimit::{self, PerIp};
use crate::schema::users;
use crate::settings::Settings;

/// Consecutive failures that lock an account.
pub const LOCKOUT_THRESHOLD: i32 = 5;
/// How long a lock lasts.
pub const LOCKOUT_MINUTES: i64 = 15;

/// The one answer for every wrong login, so it reveals nothing about which
/// accounts exist or are locked.
pub const BAD_LOGIN: &str = "That login and password do not match an account, or the account is locked.";

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    ctx: PageContext,
    login: String,
    next: String,
    error: Option<String>,
    unverified: bool,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

async fn show(
    ctx: PageContext,
    query: web::Query<NextQuery>,
    settings: web::Data<Settings>,
) -> Result<HttpResponse, AppError> {
    render(&LoginPage {
        ctx,
        login: String::new(),
        next: super::safe_next(&settings.public_base_url, query.next.as_deref()),
        error: None,
        unverified: false,
    })
}

#[derive(Deserialize)]
pub struct LoginForm {
    login: String,
    password: SecretString,
    remember: Option<String>,
    next: Option<String>,
}

/// What a sign-in attempt came to, decided in one transaction.
enum Outcome {
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

#[allow(clippy::too_many_arguments)]
async fn submit(
    req: HttpRequest,
    ctx: PageContext,
    form: web::Form<LoginForm>,
    meta: RequestMeta,
    pool: web::Data<PgPool>,
    redis: web::Data<Redis>,
    hasher: web::Data<PasswordHasher>,
    settings: web::Data<Settings>,
    signal: web::Data<OutboxSignal>,
) -> Result<HttpResponse, AppError> {
    ratelimit::per_ip(&redis, &settings, PerIp::Login, &meta).await?;

    let form = form.into_inner();
    let login = form.login.trim().to_owned();
    let remember = form.remember.is_some();
    let next = super::safe_next(&settings.public_base_url, form.next.as_deref());

    let lookup = login.clone();
    let user = db::run(&pool, move |conn| Ok(User::find_by_login(conn, &lookup)?)).await?;
    // Verified even when there is no account or it is locked, so every
    // answer costs one argon2 run.
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let legacy = stored.as_deref().is_some_and(super::legacy_hash::is_legacy);
    let password_ok = hasher.verify(stored, form.password.clone()).await?;
    // A legacy Werkzeug hash is replaced by argon2id at its first success.
    let upgraded = if password_ok && legacy { Some(hasher.hash(form.password).await?) } else { None };

    let meta2 = meta.clone();
    let outcome = db::run(&pool, move |conn| {
        conn.transaction(|conn| decide(conn, user, password_ok, upgraded, remember, &meta2))
    })
    .await?;
    signal.notify();

    if let Some(metrics) = req.app_data::<web::Data<crate::metrics::Metrics>>() {
        metrics.login(match &outcome {
            Outcome::Success { .. } => "success",
            Outcome::SecondFactor { .. } => "second_factor",
            Outcome::Unverified => "unverified",
            Outcome::Failed => "failure",
        });
    }
    match outcome {
        Outcome::Success { user_id, session } => {
            session::sign_in(&req, user_id, &session.id)?;
            Ok(see_other(&next))
        }
        Outcome::SecondFactor { user_id } => {
            super::two_factor::begin(&req, user_id, remember, &next)?;
            Ok(see_other("/login/2fa"))
        }
        Outcome::Unverified => render_status(
            StatusCode::FORBIDDEN,
            &LoginPage {
                ctx,
                login,
                next,
                error: Some("Please confirm your email address first: follow the link we sent you.".into()),
                unverified: true,
            },
        ),
        Outcome::Failed => render_status(
            StatusCode::UNAUTHORIZED,
            &LoginPage { ctx, login, next, error: Some(BAD_LOGIN.into()), unverified: false },
        ),
    }
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
    let user: User = users::table.find(user.id).for_update().select(User::as_select()).first(conn)?;
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
        diesel::update(users::table.find(user.id)).set(users::password_hash.eq(hash)).execute(conn)?;
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
pub(crate) fn record_failure(
    conn: &mut PgConnection,
    user: &User,
    meta: &RequestMeta,
    reason: &str,
) -> Result<(), AppError> {
    let now = Utc::now();
    let failures = user.failed_logins + 1;
    let audit = AuditEvent::new("auth", "login", meta).actor(user.id).target_user(user.id, &user.username);
    if failures < LOCKOUT_THRESHOLD {
        diesel::update(users::table.find(user.id)).set(users::failed_logins.eq(failures)).execute(conn)?;
        audit.failed(reason).record(conn)?;
        return Ok(());
    }
    diesel::update(users::table.find(user.id))
        .set((users::failed_logins.eq(0), users::locked_until.eq(now + Duration::minutes(LOCKOUT_MINUTES))))
        .execute(conn)?;
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
pub(crate) fn account_password_check(
    conn: &mut PgConnection,
    user_id: i64,
    correct: bool,
    meta: &RequestMeta,
) -> Result<bool, AppError> {
    let user: User = users::table.find(user_id).for_update().select(User::as_select()).first(conn)?;
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
        diesel::update(users::table.find(user.id)).set(users::failed_logins.eq(0)).execute(conn)?;
    }
    Ok(true)
}

/// Finishes a successful sign-in: clears failures, registers the session,
/// notices a new device, writes the audit entry.
pub(crate) fn complete(
    conn: &mut PgConnection,
    user: &User,
    remember: bool,
    meta: &RequestMeta,
    method: &str,
) -> Result<UserSession, AppError> {
    let now = Utc::now();
    diesel::update(users::table.find(user.id))
        .set((
            users::failed_logins.eq(0),
            users::locked_until.eq(None::<chrono::DateTime<Utc>>),
            users::last_login_at.eq(now),
        ))
        .execute(conn)?;
    let session = UserSession::create(conn, user.id, remember, meta)?;
    let new_device = session::remember_device(conn, user.id, meta.user_agent.as_deref())?;
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

async fn logout(
    req: HttpRequest,
    current: CurrentUser,
    meta: RequestMeta,
    pool: web::Data<PgPool>,
) -> Result<HttpResponse, AppError> {
    let CurrentUser { user, session_id } = current;
    db::run(&pool, move |conn| {
        UserSession::revoke(conn, user.id, &session_id)?;
        AuditEvent::new("auth", "logout", &meta).actor(user.id).target_user(user.id, &user.username).record(conn)?;
        Ok(())
    })
    .await?;
    super::typed_session::AppSession::of(&req).sign_out();
    FlashMessage::info("You are signed out.").send();
    Ok(see_other("/"))
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/login").route(web::get().to(show)).route(web::post().to(submit)))
        .service(web::resource("/logout").route(web::post().to(logout)));
}
