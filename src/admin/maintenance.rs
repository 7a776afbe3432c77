//! Maintenance mode: everyone but admins gets the 503 page. The switch lives
//! in Redis so every instance agrees; each instance rereads it at most once
//! a second.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use actix_web_flash_messages::FlashMessage;
use redis::AsyncCommands;

use super::{require_fresh_auth, AdminUser};
use crate::audit::{AuditEvent, RequestMeta};
use crate::cache::Redis;
use crate::db::{self, PgPool};
use crate::error::AppError;
use crate::layout::see_other;

const KEY: &str = "maintenance";
const RECHECK: Duration = Duration::from_secs(1);

/// Paths that stay open so admins can sign in, and probes keep working.
const OPEN: [&str; 6] = ["/login", "/logout", "/static/", "/healthz", "/readyz", "/account/reauth"];

/// This instance's last reading of the switch.
#[derive(Clone, Default)]
pub struct MaintenanceCache(Arc<Mutex<Option<(Instant, bool)>>>);

pub async fn is_on(redis: &Redis) -> bool {
    let mut conn = redis.conn();
    conn.get::<_, Option<String>>(redis.key(KEY)).await.ok().flatten().is_some()
}

async fn cached(req: &ServiceRequest) -> bool {
    let (Some(cache), Some(redis)) =
        (req.app_data::<web::Data<MaintenanceCache>>(), req.app_data::<web::Data<Redis>>())
    else {
        return false;
    };
    if let Some((at, on)) = *cache.0.lock().unwrap_or_else(|p| p.into_inner()) {
        if at.elapsed() < RECHECK {
            return on;
        }
    }
    let on = is_on(redis).await;
    *cache.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), on));
    on
}

/// Answers 503 to everyone but admins while the switch is on.
pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let path = req.path();
    if OPEN
        .iter()
        .any(|p| path == *p || (p.ends_with('/') && path.starts_with(p)) || path.starts_with(&format!("{p}/")))
        || !cached(&req).await
    {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let is_admin = crate::auth::session::resolve(req.request()).await.ok().flatten().is_some_and(|u| u.user.is_admin());
    if is_admin {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let res = AppError::Unavailable(anyhow::anyhow!("maintenance mode")).error_response();
    Ok(req.into_response(res).map_into_right_body())
}

async fn switch(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    meta: RequestMeta,
    pool: web::Data<PgPool>,
    redis: web::Data<Redis>,
    cache: web::Data<MaintenanceCache>,
) -> Result<HttpResponse, AppError> {
    let on = match path.as_str() {
        "on" => true,
        "off" => false,
        _ => return Err(AppError::NotFound),
    };
    require_fresh_auth(&req, "/admin")?;
    let mut conn = redis.conn();
    let result: redis::RedisResult<()> =
        if on { conn.set(redis.key(KEY), "1").await } else { conn.del(redis.key(KEY)).await };
    result.map_err(|e| AppError::Unavailable(e.into()))?;
    *cache.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), on));
    let actor = admin.0.user.id;
    db::run(&pool, move |conn| {
        Ok(AuditEvent::new("admin", if on { "maintenance_on" } else { "maintenance_off" }, &meta)
            .actor(actor)
            .record(conn)?)
    })
    .await?;
    FlashMessage::warning(if on {
        "Maintenance mode is on: only admins can use the site."
    } else {
        "Maintenance mode is off."
    })
    .send();
    Ok(see_other("/admin"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/maintenance/{state}").route(web::post().to(switch)));
}
