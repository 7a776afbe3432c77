//! Prometheus metrics at `/metrics`: requests by route, latency, pool,
//! queues, cache and sign-ins. Reachable with `Authorization: Bearer
//! $METRICS_TOKEN` when a token is configured, else from loopback only.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use secrecy::ExposeSecret;

use crate::admin::dashboard::Numbers;
use crate::cache::Redis;
use crate::db::{self, PgPool};
use crate::error::AppError;
use crate::settings::Settings;

/// The app's metrics, one set per process.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    logins: IntCounterVec,
    pool: IntGaugeVec,
    queue: IntGaugeVec,
    cache: IntGaugeVec,
    users: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("questline".into()), None).expect("valid registry");
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route, method and status"),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "Time to answer, by route")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["route", "method"],
        )
        .expect("valid metric");
        let logins = IntCounterVec::new(Opts::new("logins_total", "Sign-in attempts by result"), &["result"])
            .expect("valid metric");
        let pool = IntGaugeVec::new(Opts::new("db_pool_connections", "Database pool connections"), &["state"])
            .expect("valid metric");
        let queue =
            IntGaugeVec::new(Opts::new("queue_items", "Jobs and emails by queue and state"), &["queue", "state"])
                .expect("valid metric");
        let cache = IntGaugeVec::new(Opts::new("cache_lookups", "Cache look-ups since counting began"), &["result"])
            .expect("valid");
        let users = IntGauge::new("users", "Registered accounts").expect("valid metric");
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(logins.clone()),
            Box::new(pool.clone()),
            Box::new(queue.clone()),
            Box::new(cache.clone()),
            Box::new(users.clone()),
        ] {
            registry.register(m).expect("metric registered once");
        }
        Metrics { registry, requests, latency, logins, pool, queue, cache, users }
    }

    /// Counts a sign-in attempt (`success`, `failure`, `second_factor`…).
    pub fn login(&self, result: &str) {
        self.logins.with_label_values(&[result]).inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Times every request and counts it under its route pattern (never the
/// raw path: ids and tokens would explode the label set and leak).
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = req.method().to_string();
    let res = next.call(req).await?;
    if let Some(m) = metrics {
        let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
        let status = res.status().as_u16().to_string();
        m.requests.with_label_values(&[&route, &method, &status]).inc();
        m.latency.with_label_values(&[&route, &method]).observe(started.elapsed().as_secs_f64());
    }
    Ok(res)
}

/// With a token configured, only the token opens it (behind a reverse proxy
/// on the same host every request comes from loopback); without one, only
/// loopback does.
fn allowed(req: &HttpRequest, settings: &Settings) -> bool {
    let Some(token) = &settings.metrics_token else {
        return req.peer_addr().is_some_and(|a| a.ip().is_loopback());
    };
    let given =
        req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    given.is_some_and(|g| crate::crypto::secrets_equal(g, token.expose_secret()))
}

async fn scrape(
    req: HttpRequest,
    metrics: web::Data<Metrics>,
    settings: web::Data<Settings>,
    pool: web::Data<PgPool>,
    redis: web::Data<Redis>,
) -> Result<HttpResponse, AppError> {
    if !allowed(&req, &settings) {
        return Err(AppError::NotFound);
    }
    let state = pool.state();
    metrics.pool.with_label_values(&["open"]).set(state.connections as i64);
    metrics.pool.with_label_values(&["idle"]).set(state.idle_connections as i64);
    let n = db::run(&pool, |conn| Ok(Numbers::load(conn)?)).await?;
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
    if let Some((hits, misses)) = redis.lookups().await {
        metrics.cache.with_label_values(&["hit"]).set(hits as i64);
        metrics.cache.with_label_values(&["miss"]).set(misses as i64);
    }
    let mut out = Vec::new();
    TextEncoder::new().encode(&metrics.registry.gather(), &mut out).map_err(|e| AppError::Internal(e.into()))?;
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(out))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(scrape)));
}
