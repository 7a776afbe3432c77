//! Liveness and readiness probes for load balancers and orchestrators.

use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::cache::Redis;
use crate::db::PgPool;
use crate::state::AppState;

/// How long one dependency may take before it counts as down; a probe that
/// hangs is worse than one that says "no".
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize)]
struct Check {
    ok: bool,
    latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Check {
    fn from_result(started: Instant, result: Result<(), String>) -> Self {
        let latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
        match result {
            Ok(()) => Check { ok: true, latency_ms, error: None },
            Err(e) => Check { ok: false, latency_ms, error: Some(e) },
        }
    }
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    postgres: Check,
    redis: Check,
}

/// The process is up and serving HTTP. Touches no dependency on purpose.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// PostgreSQL and Redis both answer; 503 names the one that does not.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let pool = &state.pool;
    let redis = &state.redis;
    let (postgres, redis) = tokio::join!(check_postgres(pool.clone()), check_redis(redis));
    let ready = postgres.ok && redis.ok;
    let body = Readiness { status: if ready { "ok" } else { "unavailable" }, postgres, redis };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn check_postgres(pool: PgPool) -> Check {
    let started = Instant::now();
    let result = web::block(move || -> Result<(), String> {
        let mut conn = pool.get_timeout(CHECK_TIMEOUT).map_err(|e| e.to_string())?;
        crate::db::ping(&mut conn).map_err(|e| e.to_string())?;
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    if result.is_err() {
        crate::db::note_lost_connection();
    }
    Check::from_result(started, result.map_err(|_| "PostgreSQL did not answer".to_owned()))
}

async fn check_redis(redis: &Redis) -> Check {
    let started = Instant::now();
    let result = tokio::time::timeout(CHECK_TIMEOUT, redis.ping()).await;
    let result = match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) | Err(_) => Err("Redis did not answer".to_owned()),
    };
    Check::from_result(started, result)
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(healthz)))
        .service(web::resource("/readyz").route(web::get().to(readyz)));
}
