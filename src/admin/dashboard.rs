//! The admin dashboard: users, queues, database and Redis at a glance.

use std::time::Instant;

use actix_web::{web, HttpResponse};
use askama::Template;

use crate::auth::extractors::AdminUser;
use crate::db::{self};
use crate::error::AppError;
use crate::layout::PageContext;
use crate::metrics::numbers::Numbers;
use crate::response::render;
use crate::state::AppState;

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
    /// The read replica as this instance sees it, when one is configured.
    replica: Option<crate::replica::ReplicaStatus>,
    maintenance: bool,
    /// The instance Steam key and today's use of it.
    steam: crate::steam::link::AdminOverview,
    steam_budget: u64,
}

impl DashboardPage {
    fn fmt_ms(&self, ms: &f64) -> String {
        format!("{ms:.1} ms")
    }

    /// "in use · 0.2 s behind · this instance: 1200 page reads on it, 35
    /// page reads on the primary instead".
    fn replica_summary(&self, r: &crate::replica::ReplicaStatus) -> String {
        let state = if r.usable { "in use" } else { "not in use: reads go to the primary" };
        let lag = r.lag.map_or_else(|| "lag unknown".to_owned(), |l| format!("{:.1} s behind", l.as_secs_f64()));
        let fell_back: u64 = r.fallbacks.iter().map(|(_, n)| n).sum();
        let reads = |n: u64| if n == 1 { "1 page read".to_owned() } else { format!("{n} page reads") };
        format!(
            "{state} · {lag} · this instance: {} on it, {} on the primary instead",
            reads(r.reads),
            reads(fell_back)
        )
    }
}

async fn dashboard(ctx: PageContext, _admin: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let app: &AppState = &state;
    let pool = &state.pool;
    let redis = &state.redis;
    let views = &state.views;
    let reads = &state.reads;
    let state = pool.state();
    let (n, query_ms) = db::run(pool, |conn| {
        let started = Instant::now();
        db::ping(conn)?;
        let query_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok((Numbers::load(conn)?, query_ms))
    })
    .await?;
    let started = Instant::now();
    let redis_ms = redis.ping().await.ok().map(|_| started.elapsed().as_secs_f64() * 1000.0);
    let cache_hit_rate = views.hit_rate();
    let replica = reads.status();
    let maintenance = crate::infra::maintenance_switch::read(redis).await.unwrap_or(false);
    let steam = crate::steam::link::admin_overview(app, 1).await?;
    render(&DashboardPage {
        ctx,
        n,
        pool_size: state.connections,
        pool_idle: state.idle_connections,
        query_ms,
        redis_ms,
        cache_hit_rate,
        replica,
        maintenance,
        steam,
        steam_budget: app.settings.steam_daily_call_budget,
    })
}

/// Empties the page cache on every instance (the cache epoch every request
/// reads moves) and resets this instance's hit counters; a sensitive
/// action, so it needs a fresh password.
async fn clear_cache(
    req: actix_web::HttpRequest,
    admin: AdminUser,
    meta: crate::audit::RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    crate::auth::reauth::require_recent_auth(&req, "/admin")?;
    super::service::clear_cached_pages(&state.pool, admin.0.user.id, &meta).await?;
    let removed = state.views.clear();
    actix_web_flash_messages::FlashMessage::success(format!(
        "Cached pages cleared on every instance ({removed} were kept by this one)."
    ))
    .send();
    Ok(crate::response::see_other("/admin"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin").route(web::get().to(dashboard)))
        .service(web::resource("/admin/cache/clear").route(web::post().to(clear_cache)));
}
