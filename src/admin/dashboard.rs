//! The admin dashboard: users, queues, database and Redis at a glance.

use std::time::Instant;

use actix_web::{web, HttpResponse};
use askama::Template;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::AdminUser;
use crate::cache::Redis;
use crate::db::{self, PgPool};
use crate::error::AppError;
use crate::layout::{render, PageContext};

/// The numbers on the dashboard, from one query.
#[derive(Debug, QueryableByName)]
pub struct Numbers {
    #[diesel(sql_type = BigInt)]
    pub users: i64,
    #[diesel(sql_type = BigInt)]
    pub new_this_week: i64,
    #[diesel(sql_type = BigInt)]
    pub unverified: i64,
    #[diesel(sql_type = BigInt)]
    pub locked: i64,
    #[diesel(sql_type = BigInt)]
    pub jobs_waiting: i64,
    #[diesel(sql_type = BigInt)]
    pub jobs_running: i64,
    #[diesel(sql_type = BigInt)]
    pub jobs_failed: i64,
    #[diesel(sql_type = BigInt)]
    pub mail_pending: i64,
    #[diesel(sql_type = BigInt)]
    pub mail_failed: i64,
}

impl Numbers {
    pub fn load(conn: &mut PgConnection) -> QueryResult<Numbers> {
        diesel::sql_query(
            "SELECT
               (SELECT count(*) FROM users) AS users,
               (SELECT count(*) FROM users WHERE created_at > now() - interval '7 days') AS new_this_week,
               (SELECT count(*) FROM users WHERE email_verified_at IS NULL) AS unverified,
               (SELECT count(*) FROM users WHERE status = 'locked' OR locked_until > now()) AS locked,
               (SELECT count(*) FROM jobs WHERE status = 'queued') AS jobs_waiting,
               (SELECT count(*) FROM jobs WHERE status = 'running') AS jobs_running,
               (SELECT count(*) FROM jobs WHERE status = 'failed') AS jobs_failed,
               (SELECT count(*) FROM outbox_emails WHERE status = 'pending') AS mail_pending,
               (SELECT count(*) FROM outbox_emails WHERE status = 'failed') AS mail_failed",
        )
        .get_result(conn)
    }
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    ctx: PageContext,
    n: Numbers,
    pool_size: u32,
    pool_idle: u32,
    query_ms: f64,
    redis_ms: Option<f64>,
    cache_hit_rate: Option<f64>,
    maintenance: bool,
}

impl DashboardPage {
    fn fmt_ms(&self, ms: &f64) -> String {
        format!("{ms:.1} ms")
    }
}

async fn dashboard(
    ctx: PageContext,
    _admin: AdminUser,
    pool: web::Data<PgPool>,
    redis: web::Data<Redis>,
) -> Result<HttpResponse, AppError> {
    let state = pool.state();
    let (n, query_ms) = db::run(&pool, |conn| {
        let started = Instant::now();
        diesel::sql_query("SELECT 1").execute(conn)?;
        let query_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok((Numbers::load(conn)?, query_ms))
    })
    .await?;
    let started = Instant::now();
    let redis_ms = redis.ping().await.ok().map(|_| started.elapsed().as_secs_f64() * 1000.0);
    let cache_hit_rate = redis.hit_rate().await;
    let maintenance = super::maintenance::read(&redis).await.unwrap_or(false);
    render(&DashboardPage {
        ctx,
        n,
        pool_size: state.connections,
        pool_idle: state.idle_connections,
        query_ms,
        redis_ms,
        cache_hit_rate,
        maintenance,
    })
}

/// Empties the app's cache (stats pages) on every instance and resets the
/// hit counters; a sensitive action, so it needs a fresh password.
async fn clear_cache(
    req: actix_web::HttpRequest,
    admin: AdminUser,
    meta: crate::audit::RequestMeta,
    pool: web::Data<PgPool>,
    redis: web::Data<Redis>,
) -> Result<HttpResponse, AppError> {
    super::require_fresh_auth(&req, "/admin")?;
    let removed = redis.clear_cache().await.map_err(|e| AppError::Unavailable(e.into()))?;
    let actor = admin.0.user.id;
    db::run(&pool, move |conn| {
        Ok(crate::audit::AuditEvent::new("admin", "clear_cache", &meta)
            .actor(actor)
            .details(serde_json::json!({ "keys": removed }))
            .record(conn)?)
    })
    .await?;
    actix_web_flash_messages::FlashMessage::success(format!("Cache cleared ({removed} entries).")).send();
    Ok(crate::layout::see_other("/admin"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin").route(web::get().to(dashboard)))
        .service(web::resource("/admin/cache/clear").route(web::post().to(clear_cache)));
}
