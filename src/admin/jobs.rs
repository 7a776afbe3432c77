//! Failed sync jobs and emails, with their errors, and a retry for each.

use actix_web::{web, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;

use crate::audit::{AuditEvent, RequestMeta};
use crate::auth::extractors::AdminUser;
use crate::db;
use crate::email::outbox::SEND_EMAIL;
use crate::error::AppError;
use crate::jobs::model::{self as jobs, FailedJob};
use crate::jobs::STEAM_SYNC;
use crate::layout::PageContext;
use crate::response::{render, see_other};
use crate::state::AppState;

/// A failed email as the page lists it.
pub struct FailedEmail {
    pub id: i64,
    pub to_address: String,
    pub subject: String,
    pub attempts: i32,
    pub last_error: Option<String>,
}

impl From<FailedJob> for FailedEmail {
    fn from(j: FailedJob) -> Self {
        let field = |k: &str| j.payload.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        FailedEmail {
            id: j.id,
            to_address: field("to"),
            subject: field("subject"),
            attempts: j.attempts,
            last_error: j.last_error,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/jobs.html")]
struct JobsPage {
    ctx: PageContext,
    jobs: Vec<FailedJob>,
    emails: Vec<FailedEmail>,
}

async fn page(ctx: PageContext, _admin: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let (jobs, emails) = db::run(&state.pool, |conn| {
        let emails = jobs::failed(conn, SEND_EMAIL)?.into_iter().map(FailedEmail::from).collect();
        Ok((jobs::failed(conn, STEAM_SYNC)?, emails))
    })
    .await?;
    render(&JobsPage { ctx, jobs, emails })
}

/// Queues a failed job again, with its audit entry. True when it was.
async fn retry(
    state: &AppState,
    id: i64,
    actor: i64,
    action: &'static str,
    meta: RequestMeta,
) -> Result<bool, AppError> {
    let retried = db::run(&state.pool, move |conn| {
        let retried = jobs::retry(conn, id)?;
        AuditEvent::new("admin", action, &meta).actor(actor).target_text(id.to_string()).record(conn)?;
        Ok(retried)
    })
    .await?;
    if retried {
        state.jobs.notify();
    }
    Ok(retried)
}

async fn retry_job(
    admin: AdminUser,
    path: web::Path<i64>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    if retry(&state, path.into_inner(), admin.0.user.id, "retry_job", meta).await? {
        FlashMessage::success("The job is queued again.").send();
    } else {
        FlashMessage::info("Nothing to retry: the job is not failed, or a newer one is queued.").send();
    }
    Ok(see_other("/admin/jobs"))
}

async fn retry_email(
    admin: AdminUser,
    path: web::Path<i64>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    if retry(&state, path.into_inner(), admin.0.user.id, "retry_email", meta).await? {
        FlashMessage::success("The email is queued again.").send();
    } else {
        FlashMessage::info("Nothing to retry: that email has not failed.").send();
    }
    Ok(see_other("/admin/jobs"))
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/jobs").route(web::get().to(page)))
        .service(web::resource("/admin/jobs/{id}/retry").route(web::post().to(retry_job)))
        .service(web::resource("/admin/emails/{id}/retry").route(web::post().to(retry_email)));
}
