//! The pages of "Sign in through Steam": the button's target, Steam's way
//! back, and the sign-up form for a SteamID no account has proven.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use serde::Deserialize;

use super::link::{self as steam_service, Claim};
use super::sign_in::{self as steam_sign_in, SignUpError, SteamSignIn};
use crate::audit::RequestMeta;
use crate::auth::email_address::normalise_email;
use crate::auth::extractors::{self, MaybeUser};
use crate::auth::redirect::safe_next;
use crate::auth::sign_in;
use crate::auth::sign_up_routes::check_username;
use crate::error::{AppError, Outcome};
use crate::infra::openid::Refusal;
use crate::layout::PageContext;
use crate::response::{render, render_status, see_other};
use crate::state::AppState;
use crate::typed_session::{AppSession, PendingSteam, SteamIntent, SteamSignUp};

#[derive(Deserialize)]
pub struct StartForm {
    /// `signin` (the default), `link` or `reauth`.
    intent: Option<String>,
    next: Option<String>,
    remember: Option<String>,
}

/// The "Sign in through Steam" button: off to Steam's page, with a state
/// only this browser's session knows.
async fn start(
    req: HttpRequest,
    viewer: MaybeUser,
    form: web::Form<StartForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let user_id = viewer.id();
    let intent = match (form.intent.as_deref(), user_id) {
        (Some("link"), Some(_)) => SteamIntent::Link,
        (Some("reauth"), Some(_)) => SteamIntent::Reauth,
        (Some("link" | "reauth"), None) => {
            return Err(AppError::LoginRequired { next: "/settings/steam".to_owned().into() })
        }
        // Signed in already: a sign-in through Steam proves the link.
        (_, Some(_)) => SteamIntent::Link,
        (_, None) => SteamIntent::SignIn,
    };
    let default_next = match intent {
        SteamIntent::SignIn => "/dashboard",
        SteamIntent::Link => "/settings/steam",
        SteamIntent::Reauth => "/account",
    };
    let next = match form.next.as_deref().filter(|n| !n.is_empty()) {
        Some(n) => safe_next(&state.settings.public_base_url, Some(n)),
        None => default_next.to_owned(),
    };
    if intent == SteamIntent::Link {
        // A new way to sign in (and a library replaced) is a sensitive
        // change: a stolen session must not be able to add its own.
        crate::auth::reauth::require_recent_auth(&req, "/settings/steam")?;
    }
    let session = AppSession::of(&req);
    let user = if intent == SteamIntent::SignIn { None } else { user_id };
    let url = steam_sign_in::begin(&state, &session, intent, user, &next, form.remember.is_some(), &meta).await?;
    Ok(see_other(url.as_str()))
}

#[derive(Template)]
#[template(path = "auth/steam_failed.html")]
struct FailedPage {
    ctx: PageContext,
    message: String,
    intent: &'static str,
}

/// Where a refused sign-in leaves the user: the reason, and the button to
/// try again.
fn refused(ctx: PageContext, refusal: &Refusal, intent: Option<SteamIntent>) -> Result<HttpResponse, AppError> {
    let status = match refusal {
        Refusal::Unreachable => StatusCode::BAD_GATEWAY,
        Refusal::NotThisBrowser => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_REQUEST,
    };
    let intent = match intent {
        Some(SteamIntent::Link) => "link",
        Some(SteamIntent::Reauth) => "reauth",
        _ => "signin",
    };
    render_status(status, &FailedPage { ctx, message: refusal.to_string(), intent })
}

/// Steam's answer comes back here.
async fn finish(
    req: HttpRequest,
    ctx: PageContext,
    viewer: MaybeUser,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let session = AppSession::of(&req);
    let pending = session.take_steam();
    let intent = pending.as_ref().map(|p| p.intent);
    let (pending, steam_id) = match steam_sign_in::verify(&state, pending, req.query_string(), &meta).await? {
        Outcome::Done(v) => v,
        Outcome::Refused(Refusal::Cancelled) => {
            FlashMessage::info("Signing in through Steam was cancelled.").send();
            let back = match intent {
                Some(SteamIntent::Link) => "/settings/steam",
                Some(SteamIntent::Reauth) => "/account/reauth",
                _ => "/login",
            };
            return Ok(see_other(back));
        }
        Outcome::Refused(refusal) => return refused(ctx, &refusal, intent),
    };
    match pending.intent {
        SteamIntent::SignIn => signed_in(req, &state, pending, steam_id, &meta).await,
        SteamIntent::Link | SteamIntent::Reauth if pending.user_id != viewer.id() => {
            // Signed out, or another account, since it started.
            refused(ctx, &Refusal::NotThisBrowser, Some(pending.intent))
        }
        SteamIntent::Link => linked(&state, &pending, steam_id, &meta).await,
        SteamIntent::Reauth => {
            let user_id = pending.user_id.expect("checked above: the viewer started it");
            if !steam_sign_in::reconfirms(&state, user_id, steam_id).await? {
                FlashMessage::error(
                    "That does not confirm it's you: use the Steam account linked to this one, or (with two-factor \
                     authentication on) your password and a code.",
                )
                .send();
                let next: String = url::form_urlencoded::byte_serialize(pending.next.as_bytes()).collect();
                return Ok(see_other(&format!("/account/reauth?next={next}")));
            }
            AppSession::of(&req).mark_reauthenticated(chrono::Utc::now().timestamp())?;
            Ok(see_other(&pending.next))
        }
    }
}

async fn signed_in(
    req: HttpRequest,
    state: &AppState,
    pending: PendingSteam,
    steam_id: u64,
    meta: &RequestMeta,
) -> Result<HttpResponse, AppError> {
    match steam_sign_in::sign_in(state, steam_id, pending.remember, meta).await? {
        SteamSignIn::Success { user_id, session } => {
            extractors::sign_in(&req, user_id, &session.id)?;
            Ok(see_other(&pending.next))
        }
        SteamSignIn::SecondFactor { user_id } => {
            sign_in::begin_second_factor(&req, user_id, pending.remember, &pending.next, "steam")?;
            Ok(see_other("/login/2fa"))
        }
        SteamSignIn::Refused => {
            FlashMessage::error("That account cannot sign in now: it is locked or disabled.").send();
            Ok(see_other("/login"))
        }
        SteamSignIn::NoAccount { held_unproven } => {
            let profile = steam_service::profile_of(state, None, steam_id).await;
            AppSession::of(&req).begin_steam_sign_up(&SteamSignUp {
                steam_id,
                persona: profile.as_ref().map(|p| p.personaname.clone()),
                avatar: profile.and_then(|p| p.avatarfull),
                held_unproven,
                remember: pending.remember,
                started: chrono::Utc::now().timestamp(),
            })?;
            Ok(see_other("/register/steam"))
        }
    }
}

async fn linked(
    state: &AppState,
    pending: &PendingSteam,
    steam_id: u64,
    meta: &RequestMeta,
) -> Result<HttpResponse, AppError> {
    let user_id = pending.user_id.expect("a link is started signed in");
    let profile = steam_service::profile_of(state, Some(user_id), steam_id).await;
    let persona = profile.as_ref().map_or_else(|| steam_id.to_string(), |p| p.personaname.clone());
    match steam_service::link_proven(state, user_id, steam_id, profile, meta).await? {
        Claim::Linked { replaced: false } => {
            FlashMessage::success(format!("Linked Steam account {persona}. Your library is syncing.")).send()
        }
        Claim::Linked { replaced: true } => FlashMessage::success(format!(
            "Linked Steam account {persona} in place of the previous one: its library is removed, and this one's is syncing."
        ))
        .send(),
        Claim::Verified => FlashMessage::success(
            "Your Steam account is verified. Leaderboards, compare and your public profile now show it (as your settings allow).",
        )
        .send(),
        Claim::Unchanged => FlashMessage::info("That Steam account is already linked and verified.").send(),
        Claim::HeldByAnother => FlashMessage::error(
            "That Steam account is linked to another Questline account, so it cannot be linked to this one. \
             Its owner has been told. If it is yours, sign in to that account, or ask the admin.",
        )
        .send(),
    }
    Ok(see_other(&pending.next))
}

#[derive(Template)]
#[template(path = "auth/register_steam.html")]
struct SignUpPage {
    ctx: PageContext,
    steam_id: u64,
    persona: Option<String>,
    avatar: Option<String>,
    held_unproven: bool,
    username: String,
    email: String,
    username_error: Option<String>,
    email_error: Option<String>,
}

async fn sign_up_form(
    req: HttpRequest,
    ctx: PageContext,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let Some(p) = steam_sign_in::pending_sign_up(&AppSession::of(&req)) else {
        FlashMessage::info("Sign in through Steam first; the form to create your account follows.").send();
        return Ok(see_other("/register"));
    };
    let username = steam_sign_in::propose_username(&state, p.persona.as_deref(), p.steam_id).await?;
    render(&page(ctx, p, username, String::new(), None, None))
}

fn page(
    ctx: PageContext,
    p: SteamSignUp,
    username: String,
    email: String,
    username_error: Option<String>,
    email_error: Option<String>,
) -> SignUpPage {
    SignUpPage {
        ctx,
        steam_id: p.steam_id,
        persona: p.persona,
        avatar: p.avatar,
        held_unproven: p.held_unproven,
        username,
        email,
        username_error,
        email_error,
    }
}

#[derive(Deserialize)]
pub struct SignUpForm {
    username: String,
    email: String,
}

async fn sign_up(
    req: HttpRequest,
    ctx: PageContext,
    form: web::Form<SignUpForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let session = AppSession::of(&req);
    let Some(p) = steam_sign_in::pending_sign_up(&session) else {
        FlashMessage::warning("That sign-up took too long. Please sign in through Steam again.").send();
        return Ok(see_other("/register"));
    };
    let form = form.into_inner();
    let username = form.username.trim().to_owned();
    let username_error = check_username(&username).err();
    let email = normalise_email(&form.email);
    if username_error.is_some() || email.is_err() {
        let page = page(ctx, p, username, form.email, username_error, email.err());
        return render_status(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    let email = email.expect("checked above");
    match steam_sign_in::sign_up(&state, &p, &username, &email, &meta).await? {
        Outcome::Done(s) => {
            extractors::sign_in(&req, s.user_id, &s.id)?;
            FlashMessage::success(format!(
                "Welcome, {username}! Your library is syncing. We sent a link to {email}: confirm it to get mail from us (password resets, digests)."
            ))
            .send();
            Ok(see_other("/settings/steam"))
        }
        Outcome::Refused(SignUpError::UsernameTaken) => {
            let page = page(ctx, p, username, email, Some("That username is taken.".into()), None);
            render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Outcome::Refused(SignUpError::SteamIdTaken) => {
            session.end_steam_sign_up();
            FlashMessage::error(
                "That Steam account was just linked to another Questline account. Sign in through Steam to use it.",
            )
            .send();
            Ok(see_other("/login"))
        }
    }
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/steam").route(web::post().to(start)))
        .service(web::resource("/auth/steam/return").route(web::get().to(finish)))
        .service(web::resource("/register/steam").route(web::get().to(sign_up_form)).route(web::post().to(sign_up)));
}
