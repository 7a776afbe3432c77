//! Password reset by email link. The same answer for every address; the
//! link works once, for an hour; a reset signs out every session and never
//! signs in by itself.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::email_address::{normalise_email, EmailForm};
use super::mail_links::{self, MailedLink};
use crate::audit::RequestMeta;
use crate::error::AppError;
use crate::infra::password::{self};
use crate::layout::PageContext;
use crate::ratelimit::{self, PerAccount, PerIp};
use crate::response::{render, render_status, see_other};
use crate::state::AppState;

/// The answer to every reset request, known address or not.
pub const SENT: &str =
    "If an account uses that address, we sent it a link to choose a new password. It works for one hour.";

#[derive(Template)]
#[template(path = "auth/forgot.html")]
struct ForgotPage {
    ctx: PageContext,
}

async fn forgot_form(ctx: PageContext) -> Result<HttpResponse, AppError> {
    render(&ForgotPage { ctx })
}

async fn forgot(
    form: web::Form<EmailForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let redis = &state.redis;
    let settings = &state.settings;
    let signal = &state.jobs;
    ratelimit::per_ip(redis, settings, PerIp::Reset, &meta).await?;
    if let Ok(email) = normalise_email(&form.email) {
        // Counted per address whether or not an account uses it, so the
        // limit itself reveals nothing; over it, the answer stays the same.
        let over = ratelimit::over_limit(ratelimit::per_account(redis, PerAccount::ResetMail, &email).await)?;
        mail_links::request(pool, settings, MailedLink::ResetPassword, email, over, &meta).await?;
        signal.notify();
    }
    FlashMessage::info(SENT).send();
    Ok(see_other("/login"))
}

#[derive(Template)]
#[template(path = "auth/reset.html")]
struct ResetPage {
    ctx: PageContext,
    token: String,
    valid: bool,
    error: Option<String>,
}

async fn reset_form(
    ctx: PageContext,
    token: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let token = token.into_inner();
    let valid = mail_links::is_live(pool, MailedLink::ResetPassword, token.clone()).await?;
    let page = ResetPage { ctx, token, valid, error: None };
    if valid {
        render(&page)
    } else {
        render_status(StatusCode::BAD_REQUEST, &page)
    }
}

#[derive(Deserialize)]
pub struct ResetForm {
    token: String,
    password: SecretString,
    password_confirmation: SecretString,
}

async fn reset(
    ctx: PageContext,
    form: web::Form<ResetForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let hasher = &state.hasher;
    let signal = &state.jobs;
    let form = form.into_inner();
    let token = form.token.clone();
    let owner = mail_links::reset_owner(pool, token.clone()).await?;
    let Some(owner) = owner else {
        return render_status(StatusCode::BAD_REQUEST, &ResetPage { ctx, token, valid: false, error: None });
    };
    let mut error =
        password::check_new_password(form.password.expose_secret(), &owner.username, owner.email.as_deref()).err();
    if error.is_none() && form.password.expose_secret() != form.password_confirmation.expose_secret() {
        error = Some("The two passwords do not match.".into());
    }
    if error.is_some() {
        return render_status(StatusCode::UNPROCESSABLE_ENTITY, &ResetPage { ctx, token, valid: true, error });
    }
    let hash = hasher.hash(form.password).await?;
    let done = mail_links::reset_password(pool, token, hash, &meta).await?;
    if !done {
        return render_status(
            StatusCode::BAD_REQUEST,
            &ResetPage { ctx, token: String::new(), valid: false, error: None },
        );
    }
    signal.notify();
    FlashMessage::success("Your password is changed. Sign in with the new one.").send();
    Ok(see_other("/login"))
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/password/forgot").route(web::get().to(forgot_form)).route(web::post().to(forgot)))
        .service(web::resource("/password/reset").route(web::post().to(reset)))
        .service(web::resource("/password/reset/{token}").route(web::get().to(reset_form)));
}
