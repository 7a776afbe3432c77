//! Every browser signed in to the account, with sign-out per session and for
//! all others.

use actix_web::{web, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;

use crate::audit::{AuditEvent, RequestMeta};
use crate::auth::extractors::CurrentUser;
use crate::auth::session::UserSession;
use crate::db::{self};
use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::{render, see_other};
use crate::state::AppState;

/// One row of the table.
struct SessionRow {
    id: String,
    device: String,
    ip: String,
    created: String,
    last_seen: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "account/sessions.html")]
struct SessionsPage {
    ctx: PageContext,
    sessions: Vec<SessionRow>,
}

async fn show(ctx: PageContext, current: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let user_id = current.user.id;
    let rows = db::run(pool, move |conn| Ok(UserSession::active_for_user(conn, user_id)?)).await?;
    let sessions = rows
        .into_iter()
        .map(|s| SessionRow {
            device: s.device(),
            ip: s.ip.clone().unwrap_or_else(|| "unknown".into()),
            created: s.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            last_seen: s.last_seen_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            current: s.id == current.session_id,
            id: s.id,
        })
        .collect();
    render(&SessionsPage { ctx, sessions })
}

async fn revoke_one(
    current: CurrentUser,
    id: web::Path<String>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let id = id.into_inner();
    let user = current.user;
    let revoked = db::run(pool, move |conn| {
        // Scoped to the owner: another user's session id revokes nothing.
        let revoked = UserSession::revoke(conn, user.id, &id)?;
        let event = AuditEvent::new("session", "revoke", &meta).actor(user.id).target_user(user.id, &user.username);
        if revoked {
            event.record(conn)?
        } else {
            event.failed("no such session").record(conn)?
        }
        Ok(revoked)
    })
    .await?;
    if revoked {
        FlashMessage::success("That session is signed out.").send();
    } else {
        FlashMessage::warning("That session was already signed out.").send();
    }
    Ok(see_other("/account/sessions"))
}

async fn revoke_others(
    current: CurrentUser,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let CurrentUser { user, session_id, .. } = current;
    let ended = db::run(pool, move |conn| {
        let ended = UserSession::revoke_all_except(conn, user.id, Some(&session_id))?;
        AuditEvent::new("session", "revoke_others", &meta)
            .actor(user.id)
            .target_user(user.id, &user.username)
            .details(serde_json::json!({ "sessions_ended": ended }))
            .record(conn)?;
        Ok(ended)
    })
    .await?;
    FlashMessage::success(format!("Signed out {ended} other session(s).")).send();
    Ok(see_other("/account/sessions"))
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/account/sessions").route(web::get().to(show)))
        .service(web::resource("/account/sessions/revoke-others").route(web::post().to(revoke_others)))
        .service(web::resource("/account/sessions/{id}/revoke").route(web::post().to(revoke_one)));
}
