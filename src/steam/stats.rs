//! Profile statistics and an unlock timeline drawn as SVG on the server.
//! Computed once per sync: cached in Redis under a key that includes the
//! time of the last sync, so a sync makes the old entry unreachable.

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::account::SteamAccount;
use crate::auth::extractors::CurrentUser;
use crate::cache::Redis;
use crate::db::{self, PgPool};
use crate::error::AppError;
use crate::layout::PageContext;
use crate::models::library::{self, MonthRow, Totals};
use crate::response::render;
use crate::state::AppState;

/// Cached for a day at most; a sync changes the key long before that.
const CACHE_TTL_SECS: u64 = 86_400;
/// The timeline shows at most this many months, the most recent.
const MAX_MONTHS: usize = 60;

/// What the stats page shows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub totals: Totals,
    months: Vec<MonthRow>,
}

/// One bar of the chart, in SVG user units.
pub struct Bar {
    pub x: i64,
    pub y: i64,
    pub height: i64,
    pub label: String,
    pub count: i64,
}

pub const CHART_W: i64 = 720;
pub const CHART_H: i64 = 200;

impl Stats {
    fn compute(conn: &mut PgConnection, user_id: i64) -> QueryResult<Stats> {
        Ok(Stats { totals: library::totals(conn, user_id)?, months: library::unlocks_by_month(conn, user_id)? })
    }

    pub fn hours(&self) -> String {
        format!("{:.0}", self.totals.minutes as f64 / 60.0)
    }

    pub fn average(&self) -> String {
        self.totals.average_completion.map(|a| format!("{:.1}%", a * 100.0)).unwrap_or_else(|| "–".into())
    }

    /// Bars for the most recent months, scaled to the chart.
    pub fn bars(&self) -> Vec<Bar> {
        let months = &self.months[self.months.len().saturating_sub(MAX_MONTHS)..];
        let max = months.iter().map(|m| m.count).max().unwrap_or(1).max(1);
        let n = months.len().max(1) as i64;
        let slot = CHART_W / n;
        months
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let height = (m.count * (CHART_H - 20) / max).max(1);
                Bar {
                    x: i as i64 * slot,
                    y: CHART_H - height,
                    height,
                    label: m.month.format("%Y-%m").to_string(),
                    count: m.count,
                }
            })
            .collect()
    }

    pub fn bar_width(&self) -> i64 {
        let n = self.months.len().clamp(1, MAX_MONTHS) as i64;
        (CHART_W / n - 2).max(1)
    }
}

/// The user's stats, from the cache when the last sync has not changed.
pub async fn stats_for(pool: &PgPool, redis: &Redis, user_id: i64) -> Result<Stats, AppError> {
    let synced: Option<Option<DateTime<Utc>>> =
        db::run(pool, move |conn| Ok(SteamAccount::last_synced_at(conn, user_id)?)).await?;
    let version = synced.flatten().map(|t| t.timestamp_micros()).unwrap_or(0);
    let key = redis.key(&format!("stats:{user_id}:{version}"));
    // The cache is an optimisation: if Redis fails, compute.
    let k = key.clone();
    let cached = redis.call(|mut c| async move { c.get::<_, Option<String>>(&k).await }).await;
    if let Ok(Some(raw)) = cached {
        if let Ok(stats) = serde_json::from_str::<Stats>(&raw) {
            redis.record_lookup(true).await;
            return Ok(stats);
        }
    }
    redis.record_lookup(false).await;
    let stats = db::run(pool, move |conn| Ok(Stats::compute(conn, user_id)?)).await?;
    if let Ok(raw) = serde_json::to_string(&stats) {
        let _ = redis.call(|mut c| async move { c.set_ex::<_, _, ()>(&key, raw, CACHE_TTL_SECS).await }).await;
    }
    Ok(stats)
}

#[derive(Template)]
#[template(path = "steam/stats.html")]
struct StatsPage {
    ctx: PageContext,
    stats: Stats,
    bars: Vec<Bar>,
    bar_width: i64,
    chart_w: i64,
    chart_h: i64,
}

async fn show(ctx: PageContext, current: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let redis = &state.redis;
    let stats = stats_for(pool, redis, current.user.id).await?;
    let bars = stats.bars();
    let bar_width = stats.bar_width();
    render(&StatsPage { ctx, stats, bars, bar_width, chart_w: CHART_W, chart_h: CHART_H })
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/stats").route(web::get().to(show)));
}
