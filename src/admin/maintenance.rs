//! Maintenance mode: everyone but admins gets the 503 page, and the admin
//! button that flips it. The switch itself is in `crate::infra::maintenance_switch`.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use actix_web_flash_messages::FlashMessage;

use crate::audit::{AuditEvent, RequestMeta};
use crate::auth::extractors::AdminUser;
use crate::auth::reauth::require_recent_auth;
use crate::db::{self};
use crate::error::AppError;
use crate::infra::maintenance_switch::{self};
use crate::response::see_other;
use crate::state::AppState;

/// Paths that stay open so admins can sign in, and probes keep working.
const OPEN: [&str; 6] = ["/login", "/logout", "/static/", "/healthz", "/readyz", "/account/reauth"];

fn cached(req: &ServiceRequest) -> bool {
    req.app_data::<web::Data<AppState>>().is_some_and(|s| s.maintenance.is_on())
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
    let is_admin =
        crate::auth::extractors::resolve(req.request()).await.ok().flatten().is_some_and(|u| u.user.is_admin());
    if is_admin {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let res = AppError::Maintenance.error_response();
    Ok(req.into_response(res).map_into_right_body())
}

async fn switch(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<String>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let redis = &state.redis;
    let cache = &state.maintenance;
    let on = match path.as_str() {
        "on" => true,
        "off" => false,
        _ => return Err(AppError::NotFound),
    };
    require_recent_auth(&req, "/admin")?;
    maintenance_switch::write(redis, on).await.map_err(|e| AppError::Unavailable(e.into()))?;
    cache.set(on);
    let actor = admin.0.user.id;
    db::run(pool, move |conn| {
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
