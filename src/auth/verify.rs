//! Email verification. The link opens a page whose button confirms: a GET
//! never changes state, and mail scanners that prefetch links spend nothing.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use serde::Deserialize;

use super::email_address::{normalise_email, EmailForm};
use super::mail_links::{self, MailedLink};
use crate::audit::RequestMeta;
use crate::error::AppError;
use crate::layout::PageContext;
use crate::ratelimit::{self, PerIp};
use crate::response::{render, render_status, see_other};
use crate::state::AppState;

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
    let valid = mail_links::is_live(pool, MailedLink::VerifyEmail, token.clone()).await?;
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
    let verified = mail_links::confirm_email(pool, token.clone(), &meta).await?;
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
        mail_links::request(pool, settings, MailedLink::VerifyEmail, email, false, &meta).await?;
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
