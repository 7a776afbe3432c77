//! Maintenance mode: everyone but admins gets the 503 page. The switch lives
//! in Redis so every instance agrees; each instance keeps a local copy that
//! a background task refreshes every second, so no request ever waits on
//! Redis for it. While Redis is down the copy keeps its last reading: the
//! site stays as it was (a site in maintenance stays closed, an open one
//! stays open).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

/// This instance's copy of the switch.
#[derive(Clone, Default)]
pub struct MaintenanceCache(Arc<AtomicBool>);

impl MaintenanceCache {
    /// The last reading.
    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }

    /// Refreshes the copy from Redis every second until the runtime stops;
    /// a failed reading keeps the last one.
    pub async fn refresh_forever(self, redis: Redis) {
        loop {
            if let Ok(on) = read(&redis).await {
                self.set(on);
            }
            tokio::time::sleep(RECHECK).await;
        }
    }
}

/// The switch as Redis holds it.
pub async fn read(redis: &Redis) -> Result<bool, crate::cache::RedisDown> {
    let key = redis.key(KEY);
    redis.call(|mut c| async move { c.get::<_, Option<String>>(key).await }).await.map(|v| v.is_some())
}

fn cached(req: &ServiceRequest) -> bool {
    req.app_data::<web::Data<MaintenanceCache>>().is_some_and(|c| c.is_on())
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
        || !cached(&req)
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
    let key = redis.key(KEY);
    redis
        .call(|mut c| async move {
            if on {
                c.set::<_, _, ()>(key, "1").await
            } else {
                c.del::<_, ()>(key).await
            }
        })
        .await
        .map_err(|e| AppError::Unavailable(e.into()))?;
    cache.set(on);
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
