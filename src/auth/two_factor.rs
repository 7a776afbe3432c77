//! The second sign-in step for accounts with TOTP.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Utc;
use diesel::prelude::*;
use serde::Deserialize;

use super::login::{complete, record_failure, BAD_LOGIN};
use super::session::{self, UserSession};
use super::totp;
use super::typed_session::{AppSession, PendingSecondFactor};
use crate::audit::RequestMeta;
use crate::cache::Redis;
use crate::crypto::Cipher;
use crate::db::{self, PgPool};
use crate::email::worker::OutboxSignal;
use crate::error::AppError;
use crate::layout::{render, render_status, see_other, PageContext};
use crate::models::user::User;
use crate::ratelimit::{self, PerIp};
use crate::schema::users;
use crate::settings::Settings;

/// The password step stays good this long.
const PENDING_SECS: i64 = 300;

/// Remembers that the password step passed. A new session id here, and
/// again once the code is accepted.
pub fn begin(req: &HttpRequest, user_id: i64, remember: bool, next: &str) -> Result<(), AppError> {
    AppSession::of(req).begin_second_factor(&PendingSecondFactor {
        user_id,
        remember,
        next: next.to_owned(),
        started: Utc::now().timestamp(),
    })
}

fn pending(req: &HttpRequest) -> Option<PendingSecondFactor> {
    let p = AppSession::of(req).pending_second_factor()?;
    (Utc::now().timestamp() - p.started < PENDING_SECS).then_some(p)
}

#[derive(Template)]
#[template(path = "auth/two_factor.html")]
struct CodePage {
    ctx: PageContext,
    error: Option<String>,
}

async fn show(req: HttpRequest, ctx: PageContext) -> Result<HttpResponse, AppError> {
    if pending(&req).is_none() {
        return Ok(see_other("/login"));
    }
    render(&CodePage { ctx, error: None })
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

#[allow(clippy::too_many_arguments)]
async fn submit(
    req: HttpRequest,
    ctx: PageContext,
    form: web::Form<CodeForm>,
    meta: RequestMeta,
    pool: web::Data<PgPool>,
    redis: web::Data<Redis>,
    cipher: web::Data<Cipher>,
    settings: web::Data<Settings>,
    signal: web::Data<OutboxSignal>,
) -> Result<HttpResponse, AppError> {
    ratelimit::per_ip(&redis, &settings, PerIp::Login, &meta).await?;
    let Some(p) = pending(&req) else {
        actix_web_flash_messages::FlashMessage::warning("Please sign in again.").send();
        return Ok(see_other("/login"));
    };
    let code = form.into_inner().code;
    let cipher = cipher.get_ref().clone();
    let (user_id, remember) = (p.user_id, p.remember);
    let result: Option<UserSession> = db::run(&pool, move |conn| {
        conn.transaction(|conn| {
            let user: User = users::table.find(user_id).for_update().select(User::as_select()).first(conn)?;
            if user.locked_until.is_some_and(|t| t > Utc::now()) {
                crate::audit::AuditEvent::new("auth", "login", &meta)
                    .target_user(user.id, &user.username)
                    .failed("account locked")
                    .record(conn)?;
                return Ok(None);
            }
            if !totp::verify_second_factor(conn, &cipher, &user, &code)? {
                record_failure(conn, &user, &meta, "wrong second-factor code")?;
                return Ok(None);
            }
            Ok(Some(complete(conn, &user, remember, &meta, "password+totp")?))
        })
    })
    .await?;
    signal.notify();
    match result {
        Some(s) => {
            // Signing in renews the session and drops the pending step.
            session::sign_in(&req, s.user_id, &s.id)?;
            Ok(see_other(&p.next))
        }
        None => render_status(
            StatusCode::UNAUTHORIZED,
            &CodePage { ctx, error: Some(format!("That code is not valid. {BAD_LOGIN}")) },
        ),
    }
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/login/2fa").route(web::get().to(show)).route(web::post().to(submit)));
}
