//! The metrics endpoint and the middleware that times every request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};
use prometheus::{Encoder, TextEncoder};
use secrecy::ExposeSecret;

use super::numbers::Numbers;
use crate::db::{self};
use crate::error::AppError;
use crate::settings::Settings;
use crate::state::AppState;

/// Times every request and counts it under its route pattern (never the
/// raw path: ids and tokens would explode the label set and leak).
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().to_string();
    let res = next.call(req).await?;
    if let Some(state) = state {
        let m = &state.metrics;
        let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
        let status = res.status().as_u16().to_string();
        m.requests.with_label_values(&[&route, &method, &status]).inc();
        m.latency.with_label_values(&[&route, &method]).observe(started.elapsed().as_secs_f64());
    }
    Ok(res)
}

/// With a token configured, only the token opens it; without one, only a
/// client on loopback does (behind a reverse proxy on the same host, list it
/// in `TRUSTED_PROXIES`, or every request would look local).
fn allowed(req: &HttpRequest, settings: &Settings) -> bool {
    let Some(token) = &settings.metrics_token else {
        return crate::client_ip::of_request(req).is_some_and(|ip| ip.is_loopback());
    };
    let given =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    given.is_some_and(|g| crate::crypto::secrets_equal(g, token.expose_secret()))
}

async fn scrape(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let metrics = &state.metrics;
    let settings = &state.settings;
    let pool = &state.pool;
    let views = &state.views;
    let body_budget = &state.body_budget;
    let reads = &state.reads;
    if !allowed(&req, settings) {
        return Err(AppError::NotFound);
    }
    let state = pool.state();
    metrics.pool.with_label_values(&["open"]).set(state.connections as i64);
    metrics.pool.with_label_values(&["idle"]).set(state.idle_connections as i64);
    let n = db::run(pool, |conn| Ok(Numbers::load(conn)?)).await?;
    for (queue, label, v) in [
        ("sync", "waiting", n.jobs_waiting),
        ("sync", "running", n.jobs_running),
        ("sync", "failed", n.jobs_failed),
        ("email", "pending", n.mail_pending),
        ("email", "failed", n.mail_failed),
    ] {
        metrics.queue.with_label_values(&[queue, label]).set(v);
    }
    metrics.users.set(n.users);
    if let Some(r) = reads.status() {
        metrics.replica_reads.with_label_values(&["replica", ""]).set(r.reads as i64);
        for (why, n) in r.fallbacks {
            metrics.replica_reads.with_label_values(&["primary", why.label()]).set(n as i64);
        }
        metrics.replica_lag.set(r.lag.map_or(-1.0, |l| l.as_secs_f64()));
        metrics.replica_usable.set(i64::from(r.usable));
    }
    let (hits, misses) = views.lookups();
    metrics.cache.with_label_values(&["hit"]).set(hits as i64);
    metrics.cache.with_label_values(&["miss"]).set(misses as i64);
    let (bytes, pages) = views.weight().await;
    metrics.cache_kept.with_label_values(&["bytes"]).set(bytes as i64);
    metrics.cache_kept.with_label_values(&["pages"]).set(pages as i64);
    metrics.cache_kept.with_label_values(&["too_heavy"]).set(views.too_heavy() as i64);
    metrics.body_buffer.set(body_budget.held() as i64);
    let mut out = Vec::new();
    TextEncoder::new().encode(&metrics.registry.gather(), &mut out).map_err(|e| AppError::Internal(e.into()))?;
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(out))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(scrape)));
}
