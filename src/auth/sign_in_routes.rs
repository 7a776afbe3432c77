//! The sign-in form and signing out.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use crate::audit::RequestMeta;
use crate::auth::extractors::{self, CurrentUser};
use crate::auth::redirect::safe_next;
use crate::auth::sign_in::{self, Outcome, BAD_LOGIN};
use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::{render, render_status, see_other};
use crate::state::AppState;
use crate::typed_session::AppSession;

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
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let settings = &state.settings;
    render(&LoginPage {
        ctx,
        login: String::new(),
        next: safe_next(&settings.public_base_url, query.next.as_deref()),
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

async fn submit(
    req: HttpRequest,
    ctx: PageContext,
    form: web::Form<LoginForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let login = form.login.trim().to_owned();
    let remember = form.remember.is_some();
    let next = safe_next(&state.settings.public_base_url, form.next.as_deref());
    match sign_in::password_step(&state, &login, form.password, remember, &meta).await? {
        Outcome::Success { user_id, session } => {
            extractors::sign_in(&req, user_id, &session.id)?;
            Ok(see_other(&next))
        }
        Outcome::SecondFactor { user_id } => {
            sign_in::begin_second_factor(&req, user_id, remember, &next, "password")?;
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

async fn logout(
    req: HttpRequest,
    current: CurrentUser,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    sign_in::sign_out(&state, &current.user, current.session_id, &meta).await?;
    AppSession::of(&req).sign_out();
    FlashMessage::info("You are signed out.").send();
    Ok(see_other("/"))
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/login").route(web::get().to(show)).route(web::post().to(submit)))
        .service(web::resource("/logout").route(web::post().to(logout)));
}
