//! Email verification. The link opens a page whose button confirms: a GET
//! never changes state, and mail scanners that prefetch links spend nothing.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use chrono::{Duration, Utc};
use diesel::prelude::*;
use serde::Deserialize;

use super::email_address::{normalise_email, EmailForm};
use super::tokens::{self, Purpose};
use crate::audit::{AuditEvent, RequestMeta};
use crate::db::{self};
use crate::email::messages::VerifyEmail;
use crate::error::AppError;
use crate::layout::PageContext;
use crate::models::user::User;
use crate::ratelimit::{self, PerIp};
use crate::response::{render, render_status, see_other};
use crate::settings::Settings;
use crate::state::AppState;

/// Issues a confirmation token for `email` and queues the link to it, in
/// the caller's transaction. Registration, "send again" and email changes
/// all go through here.
pub fn send_link(conn: &mut PgConnection, settings: &Settings, user: &User, email: &str) -> Result<(), AppError> {
    let token = tokens::issue(conn, user.id, Purpose::VerifyEmail, Some(email))?;
    VerifyEmail { username: user.username.clone(), link: settings.public_url(&format!("/verify-email/{token}")) }
        .queue(conn, email)
}

/// A new link is sent at most this often per account.
const RESEND_INTERVAL: Duration = Duration::seconds(60);

#[derive(Template)]
#[template(path = "auth/verify.html")]
struct ConfirmPage {
    ctx: PageContext,
    token: String,
    valid: bool,
}

async fn show(
    ctx: PageContext,
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let token = token.into_inner();
    let t = token.clone();
    let valid = db::run(pool, move |conn| Ok(tokens::peek(conn, &t, Purpose::VerifyEmail)?.is_some())).await?;
    let page = ConfirmPage { ctx, token, valid };
    if valid {
        render(&page)
    } else {
        render_status(StatusCode::BAD_REQUEST, &page)
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    token: String,
}

async fn confirm(
    ctx: PageContext,
    form: web::Form<ConfirmForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let token = form.into_inner().token;
    let t = token.clone();
    let verified = db::run(pool, move |conn| {
        conn.transaction(|conn| {
            let Some(spent) = tokens::consume(conn, &t, Purpose::VerifyEmail)? else {
                AuditEvent::new("auth", "verify_email", &meta).failed("invalid or expired token").record(conn)?;
                return Ok(false);
            };
            let user = User::find(conn, spent.user_id)?.ok_or(AppError::NotFound)?;
            let email = spent.email.or(user.email.clone());
            User::confirm_email(conn, user.id, email.as_deref()).map_err(|e| match e {
                // Taken by another account since the link was sent; the
                // transaction rolls back, so the link stays unspent.
                diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
                    AppError::BadRequest("That address is now used by another account.".into())
                }
                other => other.into(),
            })?;
            AuditEvent::new("auth", "verify_email", &meta)
                .actor(user.id)
                .target_user(user.id, &user.username)
                .record(conn)?;
            Ok(true)
        })
    })
    .await?;
    if verified {
        // Signed in (an address change, or a confirmation in the same
        // browser): back to the account, not to the sign-in form.
        if ctx.user.is_some() {
            FlashMessage::success("Your email address is confirmed.").send();
            return Ok(see_other("/account"));
        }
        FlashMessage::success("Your email address is confirmed. You can sign in now.").send();
        Ok(see_other("/login"))
    } else {
        render_status(StatusCode::BAD_REQUEST, &ConfirmPage { ctx, token, valid: false })
    }
}

#[derive(Template)]
#[template(path = "auth/resend.html")]
struct ResendPage {
    ctx: PageContext,
}

async fn resend_form(ctx: PageContext) -> Result<HttpResponse, AppError> {
    render(&ResendPage { ctx })
}

/// Sends a fresh link to an unverified address. Same answer whatever the
/// address, and throttled per IP and per account.
async fn resend(
    form: web::Form<EmailForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let redis = &state.redis;
    let settings = &state.settings;
    let signal = &state.jobs;
    ratelimit::per_ip(redis, settings, PerIp::VerifyResend, &meta).await?;
    if let Ok(email) = normalise_email(&form.email) {
        let base = settings.clone();
        db::run(pool, move |conn| {
            conn.transaction(|conn| {
                let Some(user) = User::find_by_email(conn, &email)?.filter(|u| u.email_verified_at.is_none()) else {
                    return Ok(());
                };
                let recent = tokens::last_issued(conn, user.id, Purpose::VerifyEmail)?
                    .is_some_and(|t| Utc::now() - t < RESEND_INTERVAL);
                if recent {
                    return Ok(());
                }
                send_link(conn, &base, &user, &email)?;
                AuditEvent::new("auth", "verify_resend", &meta).target_user(user.id, &user.username).record(conn)?;
                Ok(())
            })
        })
        .await?;
        signal.notify();
    }
    FlashMessage::info("If that address is waiting for confirmation, a new link is on its way.").send();
    Ok(see_other("/login"))
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/verify-email").route(web::post().to(confirm)))
        .service(web::resource("/verify-email/resend").route(web::get().to(resend_form)).route(web::post().to(resend)))
        .service(web::resource("/verify-email/{token}").route(web::get().to(show)));
}
