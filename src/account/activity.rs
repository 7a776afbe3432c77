//! Recent sign-in attempts against the account.

use actix_web::{web, HttpResponse};
use askama::Template;

use crate::audit::AuditEntry;
use crate::auth::extractors::CurrentUser;
use crate::auth::session::describe_device;
use crate::db::{self};
use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::render;
use crate::state::AppState;

struct ActivityRow {
    when: String,
    success: bool,
    what: String,
    ip: String,
    device: String,
}

#[derive(Template)]
#[template(path = "account/activity.html")]
struct ActivityPage {
    ctx: PageContext,
    rows: Vec<ActivityRow>,
}

async fn show(ctx: PageContext, current: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let user_id = current.user.id;
    let entries = db::run(pool, move |conn| Ok(AuditEntry::recent_logins(conn, user_id, 50)?)).await?;
    let rows = entries
        .into_iter()
        .map(|e| ActivityRow {
            when: e.occurred_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            success: e.success,
            what: match (e.action.as_str(), e.success, e.error.as_deref()) {
                ("lockout", _, _) => "Account locked".into(),
                (_, true, _) => "Signed in".into(),
                (_, false, Some(reason)) => format!("Failed: {reason}"),
                _ => "Failed".into(),
            },
            ip: e.ip.unwrap_or_else(|| "unknown".into()),
            device: describe_device(e.user_agent.as_deref()),
        })
        .collect();
    render(&ActivityPage { ctx, rows })
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/account/activity").route(web::get().to(show)));
}
