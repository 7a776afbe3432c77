//! Failed sync jobs and emails, with their errors, and a retry for each.

use actix_web::{web, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz};

use crate::audit::{AuditEvent, RequestMeta};
use crate::auth::extractors::AdminUser;
use crate::db::{self};
use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::{render, see_other};
use crate::state::AppState;

#[derive(Debug, QueryableByName)]
pub struct FailedJob {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub username: Option<String>,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, QueryableByName)]
pub struct FailedEmail {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub to_address: String,
    #[diesel(sql_type = Text)]
    pub subject: String,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/jobs.html")]
struct JobsPage {
    ctx: PageContext,
    jobs: Vec<FailedJob>,
    emails: Vec<FailedEmail>,
}

async fn page(ctx: PageContext, _admin: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let (jobs, emails) = db::run(pool, |conn| {
        let jobs = diesel::sql_query(
            "SELECT j.id, j.kind, u.username, j.attempts, j.last_error, j.finished_at
             FROM jobs j LEFT JOIN users u ON u.id = j.user_id
             WHERE j.status = 'failed' ORDER BY j.finished_at DESC NULLS LAST, j.id DESC LIMIT 200",
        )
        .load(conn)?;
        let emails = diesel::sql_query(
            "SELECT id, to_address, subject, attempts, last_error FROM outbox_emails
             WHERE status = 'failed' ORDER BY id DESC LIMIT 200",
        )
        .load(conn)?;
        Ok((jobs, emails))
    })
    .await?;
    render(&JobsPage { ctx, jobs, emails })
}

async fn retry_job(
    admin: AdminUser,
    path: web::Path<i64>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let signal = &state.jobs;
    let (id, actor) = (path.into_inner(), admin.0.user.id);
    let retried = db::run(pool, move |conn| {
        // A newer job for the same user may already be queued; the partial
        // unique index then refuses, and that newer job is the retry.
        let n = diesel::sql_query(
            "UPDATE jobs SET status = 'queued', attempts = 0, run_after = now(), locked_until = NULL,
                    last_error = NULL, finished_at = NULL
             WHERE id = $1 AND status = 'failed'
               AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.kind = jobs.kind AND o.user_id = jobs.user_id
                               AND o.status IN ('queued', 'running'))",
        )
        .bind::<BigInt, _>(id)
        .execute(conn)?;
        AuditEvent::new("admin", "retry_job", &meta).actor(actor).target_text(id.to_string()).record(conn)?;
        Ok(n > 0)
    })
    .await?;
    if retried {
        signal.notify();
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
    let pool = &state.pool;
    let signal = &state.outbox;
    let (id, actor) = (path.into_inner(), admin.0.user.id);
    let retried = db::run(pool, move |conn| {
        let n = diesel::sql_query(
            "UPDATE outbox_emails SET status = 'pending', attempts = 0, next_attempt_at = now(), last_error = NULL
             WHERE id = $1 AND status = 'failed'",
        )
        .bind::<BigInt, _>(id)
        .execute(conn)?;
        AuditEvent::new("admin", "retry_email", &meta).actor(actor).target_text(id.to_string()).record(conn)?;
        Ok(n > 0)
    })
    .await?;
    if retried {
        signal.notify();
        FlashMessage::success("The email is queued again.").send();
    } else {
        FlashMessage::info("Nothing to retry: that email has not failed.").send();
    }
    Ok(see_other("/admin/jobs"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/jobs").route(web::get().to(page)))
        .service(web::resource("/admin/jobs/{id}/retry").route(web::post().to(retry_job)))
        .service(web::resource("/admin/emails/{id}/retry").route(web::post().to(retry_email)));
}
