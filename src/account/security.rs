//! Sensitive account changes: password, email and two-factor settings, each
//! behind a fresh re-authentication ("sudo mode", as GitHub calls it).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use chrono::Utc;
use diesel::prelude::*;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::audit::{AuditEvent, RequestMeta};
use crate::auth::email_address::{normalise_email, EmailForm};
use crate::auth::extractors::CurrentUser;
use crate::auth::password::{self, PasswordHasher};
use crate::auth::redirect::safe_next;
use crate::auth::session::UserSession;
use crate::auth::totp;
use crate::auth::typed_session::AppSession;
use crate::crypto::Cipher;
use crate::db::{self, PgPool};
use crate::email::messages::{AddressInUse, EmailChangeNotice, PasswordChanged};
use crate::error::AppError;
use crate::layout::PageContext;
use crate::models::user::User;
use crate::ratelimit::{self, PerAccount, PerIp};
use crate::response::{render, render_status, see_other};
use crate::state::AppState;

/// Refuses unless the password was confirmed in the last ten minutes.
fn require_recent_auth(req: &HttpRequest) -> Result<(), AppError> {
    crate::auth::reauth::require_recent_auth(req, "/account/security")
}

/// Password (and code, when enrolled) again. Shared by the re-authentication
/// page and by disabling 2FA.
async fn check_credentials(
    user: &User,
    password: SecretString,
    code: Option<String>,
    hasher: &PasswordHasher,
    cipher: &Cipher,
    pool: &PgPool,
) -> Result<bool, AppError> {
    if !hasher.verify(user.password_hash.clone(), password).await? {
        return Ok(false);
    }
    if !user.has_totp() {
        return Ok(true);
    }
    let Some(code) = code else { return Ok(false) };
    let (cipher, user_id) = (cipher.clone(), user.id);
    db::run(pool, move |conn| {
        conn.transaction(|conn| {
            let user = User::lock_for_update(conn, user_id)?;
            totp::verify_second_factor(conn, &cipher, &user, &code)
        })
    })
    .await
}

#[derive(Template)]
#[template(path = "account/reauth.html")]
struct ReauthPage {
    ctx: PageContext,
    next: String,
    needs_code: bool,
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
    let pool = &state.pool;
    let redis = &state.redis;
    let hasher = &state.hasher;
    let cipher = &state.cipher;
    let settings = &state.settings;
    let signal = &state.jobs;
    ratelimit::per_ip(redis, settings, PerIp::Login, &meta).await?;
    let form = form.into_inner();
    let next = safe_next(&settings.public_base_url, form.next.as_deref());
    let user = current.user;
    let code = form.code.filter(|c| !c.trim().is_empty());
    let correct = check_credentials(&user, form.password, code, hasher, cipher, pool).await?;
    let (user_id, username) = (user.id, user.username.clone());
    let ok = db::run(pool, move |conn| {
        conn.transaction(|conn| {
            let ok = crate::auth::sign_in::account_password_check(conn, user_id, correct, &meta)?;
            let event = AuditEvent::new("auth", "reauth", &meta).actor(user_id).target_user(user_id, &username);
            let event = if ok { event } else { event.failed("wrong password or code") };
            event.record(conn)?;
            Ok(ok)
        })
    })
    .await?;
    signal.notify();
    if !ok {
        return render_status(
            StatusCode::UNAUTHORIZED,
            &ReauthPage {
                ctx,
                next,
                needs_code: user.has_totp(),
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
    user: User,
}

async fn security(ctx: PageContext, current: CurrentUser) -> Result<HttpResponse, AppError> {
    render(&SecurityPage { ctx, user: current.user })
}

// --- Two-factor authentication --------------------------------------------

async fn start_2fa(
    req: HttpRequest,
    current: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let cipher = &state.cipher;
    require_recent_auth(&req)?;
    if current.user.has_totp() {
        return Ok(see_other("/account/security"));
    }
    let (cipher, user_id) = (cipher.clone(), current.user.id);
    db::run(pool, move |conn| Ok(totp::store_pending(conn, &cipher, user_id, &totp::new_secret())?)).await?;
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
    let pool = &state.pool;
    let cipher = &state.cipher;
    require_recent_auth(&req)?;
    let user = current.user;
    let c = cipher.clone();
    let u = user.clone();
    let code = form.into_inner().code;
    let codes = db::run(pool, move |conn| {
        conn.transaction(|conn| {
            let codes = totp::confirm_enrolment(conn, &c, &u, &code)?;
            let event = AuditEvent::new("auth", "2fa_enable", &meta).actor(u.id).target_user(u.id, &u.username);
            match &codes {
                Some(_) => event.record(conn)?,
                None => event.failed("wrong code").record(conn)?,
            }
            Ok(codes)
        })
    })
    .await?;
    match codes {
        // Shown once, straight away: they are stored only as hashes.
        Some(codes) => render(&BackupCodesPage { ctx, codes }),
        None => {
            let e = totp::enrolment(cipher, &user)?.ok_or(AppError::BadRequest("Start the set-up again.".into()))?;
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
    let pool = &state.pool;
    let redis = &state.redis;
    let hasher = &state.hasher;
    let cipher = &state.cipher;
    let settings = &state.settings;
    let signal = &state.jobs;
    ratelimit::per_ip(redis, settings, PerIp::Login, &meta).await?;
    let user = current.user;
    let form = form.into_inner();
    let correct = check_credentials(&user, form.password, Some(form.code), hasher, cipher, pool).await?;
    let ok = db::run(pool, move |conn| {
        conn.transaction(|conn| {
            let ok = crate::auth::sign_in::account_password_check(conn, user.id, correct, &meta)?;
            let event =
                AuditEvent::new("auth", "2fa_disable", &meta).actor(user.id).target_user(user.id, &user.username);
            if ok {
                totp::disable(conn, user.id)?;
                event.record(conn)?;
            } else {
                event.failed("wrong password or code").record(conn)?;
            }
            Ok(ok)
        })
    })
    .await?;
    signal.notify();
    if ok {
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
    let pool = &state.pool;
    let hasher = &state.hasher;
    let signal = &state.jobs;
    require_recent_auth(&req)?;
    let form = form.into_inner();
    let CurrentUser { user, session_id } = current;
    let mut error =
        password::check_new_password(form.password.expose_secret(), &user.username, user.email.as_deref()).err();
    if error.is_none() && form.password.expose_secret() != form.password_confirmation.expose_secret() {
        error = Some("The two passwords do not match.".into());
    }
    if error.is_some() {
        return render_status(StatusCode::UNPROCESSABLE_ENTITY, &PasswordPage { ctx, error });
    }
    let hash = hasher.hash(form.password).await?;
    db::run(pool, move |conn| {
        conn.transaction(|conn| {
            User::set_password_hash(conn, user.id, &hash)?;
            let ended = UserSession::revoke_all_except(conn, user.id, Some(&session_id))?;
            AuditEvent::new("auth", "password_change", &meta)
                .actor(user.id)
                .target_user(user.id, &user.username)
                .details(serde_json::json!({ "sessions_ended": ended }))
                .record(conn)?;
            if let Some(email) = &user.email {
                PasswordChanged { username: user.username.clone() }.queue(conn, email)?;
            }
            Ok(())
        })
    })
    .await?;
    signal.notify();
    FlashMessage::success("Your password is changed, and your other sessions are signed out.").send();
    Ok(see_other("/account/security"))
}

// --- Email -----------------------------------------------------------------

#[derive(Template)]
#[template(path = "account/email.html")]
struct EmailPage {
    ctx: PageContext,
    user: User,
    error: Option<String>,
}

async fn email_form(req: HttpRequest, ctx: PageContext, current: CurrentUser) -> Result<HttpResponse, AppError> {
    require_recent_auth(&req)?;
    render(&EmailPage { ctx, user: current.user, error: None })
}

async fn change_email(
    req: HttpRequest,
    ctx: PageContext,
    current: CurrentUser,
    form: web::Form<EmailForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let settings = &state.settings;
    let signal = &state.jobs;
    let redis = &state.redis;
    require_recent_auth(&req)?;
    let user = current.user;
    ratelimit::per_account(redis, PerAccount::EmailChange, &user.id.to_string()).await?;
    let new_email = match normalise_email(&form.email) {
        Ok(e) => e,
        Err(error) => {
            return render_status(StatusCode::UNPROCESSABLE_ENTITY, &EmailPage { ctx, user, error: Some(error) })
        }
    };
    // One notice an hour at most to an address's owner, however often
    // someone tries it.
    let notice_owner = ratelimit::may_notify_owner(redis, pool, &new_email).await?;
    let (u, addr, base) = (user.clone(), new_email.clone(), settings.clone());
    db::run(pool, move |conn| {
        conn.transaction(|conn| {
            if let Some(owner) = User::find_by_email(conn, &addr)?.filter(|o| o.id != u.id) {
                // Answered exactly as for a free address: the page must not
                // tell anyone which addresses have accounts. The owner hears
                // of it instead.
                AuditEvent::new("auth", "email_change_request", &meta)
                    .actor(u.id)
                    .target_user(u.id, &u.username)
                    .failed("address used by another account")
                    .record(conn)?;
                if notice_owner {
                    AddressInUse { username: owner.username.clone(), attempt: "an email change".into() }
                        .queue(conn, &addr)?;
                }
                return Ok(());
            }
            // The current address stays in force until the new one is proved.
            User::set_pending_email(conn, u.id, &addr)?;
            crate::auth::verify::send_link(conn, &base, &u, &addr)?;
            if let Some(old) = &u.email {
                EmailChangeNotice { username: u.username.clone(), new_email: addr.to_owned() }.queue(conn, old)?;
            }
            AuditEvent::new("auth", "email_change_request", &meta)
                .actor(u.id)
                .target_user(u.id, &u.username)
                .record(conn)?;
            Ok(())
        })
    })
    .await?;
    signal.notify();
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
