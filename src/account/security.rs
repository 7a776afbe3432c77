//! Sensitive account changes: password, email and two-factor settings, each
//! behind a fresh re-authentication ("sudo mode", as GitHub calls it).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::service;
use super::view::AccountView;
use crate::audit::RequestMeta;
use crate::auth::email_address::{normalise_email, EmailForm};
use crate::auth::extractors::CurrentUser;
use crate::auth::redirect::safe_next;
use crate::auth::totp;
use crate::error::AppError;
use crate::infra::password::{self};
use crate::layout::PageContext;
use crate::ratelimit::{self, PerAccount};
use crate::response::{render, render_status, see_other};
use crate::state::AppState;
use crate::typed_session::AppSession;

/// Refuses unless the password was confirmed in the last ten minutes.
fn require_recent_auth(req: &HttpRequest) -> Result<(), AppError> {
    crate::auth::reauth::require_recent_auth(req, "/account/security")
}

#[derive(Template)]
#[template(path = "account/reauth.html")]
struct ReauthPage {
    ctx: PageContext,
    next: String,
    needs_code: bool,
    /// The account has a password to confirm with (accounts made through
    /// Steam have none until their owner sets one).
    has_password: bool,
    /// Confirming through Steam is offered: no second factor to ask for
    /// (signing in through Steam would ask for it; this does not).
    steam: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

async fn reauth_form(
    ctx: PageContext,
    current: CurrentUser,
    query: web::Query<NextQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let settings = &state.settings;
    render(&ReauthPage {
        ctx,
        next: safe_next(&settings.public_base_url, query.next.as_deref()),
        needs_code: current.user.has_totp(),
        has_password: current.user.has_password(),
        steam: !current.user.has_totp(),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct ReauthForm {
    password: SecretString,
    code: Option<String>,
    next: Option<String>,
}

async fn reauth(
    req: HttpRequest,
    ctx: PageContext,
    current: CurrentUser,
    form: web::Form<ReauthForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let next = safe_next(&state.settings.public_base_url, form.next.as_deref());
    let user = current.user;
    let code = form.code.filter(|c| !c.trim().is_empty());
    if !service::reauthenticate(&state, &user, form.password, code, &meta).await? {
        return render_status(
            StatusCode::UNAUTHORIZED,
            &ReauthPage {
                ctx,
                next,
                needs_code: user.has_totp(),
                has_password: user.has_password(),
                steam: !user.has_totp(),
                error: Some("That password or code is not right.".into()),
            },
        );
    }
    AppSession::of(&req).mark_reauthenticated(Utc::now().timestamp())?;
    Ok(see_other(&next))
}

#[derive(Template)]
#[template(path = "account/security.html")]
struct SecurityPage {
    ctx: PageContext,
    user: AccountView,
}

async fn security(ctx: PageContext, current: CurrentUser) -> Result<HttpResponse, AppError> {
    render(&SecurityPage { ctx, user: AccountView::from(&current.user) })
}

// --- Two-factor authentication --------------------------------------------

async fn start_2fa(
    req: HttpRequest,
    current: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    require_recent_auth(&req)?;
    if current.user.has_totp() {
        return Ok(see_other("/account/security"));
    }
    if !current.user.has_password() {
        // With a second factor, sensitive changes ask for the password
        // and a code; an account made through Steam has no password yet.
        actix_web_flash_messages::FlashMessage::warning(
            "Set a password first: with two-factor authentication on, changes like this one ask for it and a code.",
        )
        .send();
        return Ok(see_other("/account/password"));
    }
    service::start_two_factor(&state, current.user.id).await?;
    Ok(see_other("/account/2fa/setup"))
}

#[derive(Template)]
#[template(path = "account/two_factor_setup.html")]
struct SetupPage {
    ctx: PageContext,
    qr_png_base64: String,
    secret: String,
    error: Option<String>,
}

async fn setup_page(
    req: HttpRequest,
    ctx: PageContext,
    current: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let cipher = &state.cipher;
    require_recent_auth(&req)?;
    match totp::enrolment(cipher, &current.user)? {
        Some(e) => render(&SetupPage { ctx, qr_png_base64: e.qr_png_base64, secret: e.secret_base32, error: None }),
        None => Ok(see_other("/account/security")),
    }
}

#[derive(Template)]
#[template(path = "account/backup_codes.html")]
struct BackupCodesPage {
    ctx: PageContext,
    codes: Vec<String>,
}

impl BackupCodesPage {
    /// The codes as a text file, for the download link.
    fn download_href(&self) -> String {
        let text = format!(
            "Questline backup codes. Each works once, in place of a code from your app.\n\n{}\n",
            self.codes.join("\n")
        );
        let encoded: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
        format!("data:text/plain;charset=utf-8,{}", encoded.replace('+', "%20"))
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    code: String,
}

async fn confirm_2fa(
    req: HttpRequest,
    ctx: PageContext,
    current: CurrentUser,
    form: web::Form<CodeForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    require_recent_auth(&req)?;
    let user = current.user;
    match service::confirm_two_factor(&state, &user, form.into_inner().code, &meta).await? {
        // Shown once, straight away: they are stored only as hashes.
        Some(codes) => render(&BackupCodesPage { ctx, codes }),
        None => {
            let e =
                totp::enrolment(&state.cipher, &user)?.ok_or(AppError::BadRequest("Start the set-up again.".into()))?;
            render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &SetupPage {
                    ctx,
                    qr_png_base64: e.qr_png_base64,
                    secret: e.secret_base32,
                    error: Some("That code is not right. Check the time on your device and try the next code.".into()),
                },
            )
        }
    }
}

#[derive(Deserialize)]
pub struct DisableForm {
    password: SecretString,
    code: String,
}

async fn disable_2fa(
    current: CurrentUser,
    form: web::Form<DisableForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    if service::disable_two_factor(&state, &current.user, form.password, form.code, &meta).await? {
        FlashMessage::success("Two-factor authentication is off.").send();
    } else {
        FlashMessage::error("Two-factor authentication is still on: that password or code is not right.").send();
    }
    Ok(see_other("/account/security"))
}

// --- Password --------------------------------------------------------------

#[derive(Template)]
#[template(path = "account/password.html")]
struct PasswordPage {
    ctx: PageContext,
    error: Option<String>,
}

async fn password_form(req: HttpRequest, ctx: PageContext, _current: CurrentUser) -> Result<HttpResponse, AppError> {
    require_recent_auth(&req)?;
    render(&PasswordPage { ctx, error: None })
}

#[derive(Deserialize)]
pub struct PasswordForm {
    password: SecretString,
    password_confirmation: SecretString,
}

async fn change_password(
    req: HttpRequest,
    ctx: PageContext,
    current: CurrentUser,
    form: web::Form<PasswordForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    require_recent_auth(&req)?;
    let form = form.into_inner();
    let CurrentUser { user, session_id, .. } = current;
    let mut error =
        password::check_new_password(form.password.expose_secret(), &user.username, user.email.as_deref()).err();
    if error.is_none() && form.password.expose_secret() != form.password_confirmation.expose_secret() {
        error = Some("The two passwords do not match.".into());
    }
    if error.is_some() {
        return render_status(StatusCode::UNPROCESSABLE_ENTITY, &PasswordPage { ctx, error });
    }
    service::change_password(&state, &user, &session_id, form.password, &meta).await?;
    FlashMessage::success("Your password is changed, and your other sessions are signed out.").send();
    Ok(see_other("/account/security"))
}

// --- Email -----------------------------------------------------------------

#[derive(Template)]
#[template(path = "account/email.html")]
struct EmailPage {
    ctx: PageContext,
    user: AccountView,
    error: Option<String>,
}

async fn email_form(req: HttpRequest, ctx: PageContext, current: CurrentUser) -> Result<HttpResponse, AppError> {
    require_recent_auth(&req)?;
    render(&EmailPage { ctx, user: AccountView::from(&current.user), error: None })
}

async fn change_email(
    req: HttpRequest,
    ctx: PageContext,
    current: CurrentUser,
    form: web::Form<EmailForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    require_recent_auth(&req)?;
    let user = current.user;
    ratelimit::per_account(&state.redis, PerAccount::EmailChange, &user.id.to_string()).await?;
    let new_email = match normalise_email(&form.email) {
        Ok(e) => e,
        Err(error) => {
            return render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &EmailPage { ctx, user: AccountView::from(&user), error: Some(error) },
            )
        }
    };
    service::request_email_change(&state, &user, &new_email, &meta).await?;
    FlashMessage::info(format!("We sent a link to {new_email}. Your address changes once you confirm it.")).send();
    Ok(see_other("/account/security"))
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/account/reauth").route(web::get().to(reauth_form)).route(web::post().to(reauth)))
        .service(web::resource("/account/security").route(web::get().to(security)))
        .service(web::resource("/account/2fa/start").route(web::post().to(start_2fa)))
        .service(web::resource("/account/2fa/setup").route(web::get().to(setup_page)))
        .service(web::resource("/account/2fa/confirm").route(web::post().to(confirm_2fa)))
        .service(web::resource("/account/2fa/disable").route(web::post().to(disable_2fa)))
        .service(
            web::resource("/account/password")
                .route(web::get().to(password_form))
                .route(web::post().to(change_password)),
        )
        .service(web::resource("/account/email").route(web::get().to(email_form)).route(web::post().to(change_email)));
}
