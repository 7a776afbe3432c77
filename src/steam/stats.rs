//! The stats page: totals and points, unlocks over time on a true month
//! axis (with the numbers as tables), per year, by rarity tier, the spread
//! of completion, streaks, the rarest unlocks, perfect games and the
//! newest unlocks.
//!
//! Rendered once per change and day: the body is kept in the page cache
//! (`crate::views`) under the user's version, which every sync, import and
//! percentage change moves, and the time the rarity thresholds changed.

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::auth::extractors::CurrentUser;
use crate::error::AppError;
use crate::layout::PageContext;
use crate::models::history::{self, PerfectGame, Spread, Streaks, TierCounts, UnlockItem};
use crate::models::library::{self, MonthRow, Totals};
use crate::models::score;
use crate::rarity::{self, Tier, Tiers};
use crate::response::render;
use crate::state::AppState;
use crate::views::{Versions, ViewKey};

/// Lists on the page: rarest unlocks, perfect games, newest unlocks.
const RAREST: i64 = 10;
const PERFECT: i64 = 50;
const RECENT: i64 = 10;

/// Everything the stats page shows, as cached.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub totals: Totals,
    pub points: i64,
    pub months: Vec<MonthRow>,
    pub spread: Spread,
    pub streaks: Streaks,
    pub tier_counts: TierCounts,
    pub tiers: Tiers,
    pub rarest: Vec<UnlockItem>,
    pub perfect: Vec<PerfectGame>,
    pub recent: Vec<UnlockItem>,
}

impl Stats {
    fn compute(conn: &mut PgConnection, user_id: i64, tiers: Tiers, points: i64) -> QueryResult<Stats> {
        Ok(Stats {
            totals: library::totals(conn, user_id)?,
            points,
            months: library::unlocks_by_month(conn, user_id)?,
            spread: history::completion_spread(conn, user_id)?,
            streaks: history::streaks(conn, user_id)?,
            tier_counts: history::tier_counts(conn, user_id, [tiers.ultra_rare, tiers.rare, tiers.uncommon])?,
            tiers,
            rarest: history::rarest_unlocks(conn, user_id, RAREST)?,
            perfect: history::perfect_games(conn, user_id, PERFECT)?,
            recent: history::recent_unlocks(conn, user_id, RECENT)?,
        })
    }
}

/// The user's stats, worked out from their library and unlocks.
pub async fn stats_for(state: &AppState, user_id: i64, versions: Versions) -> Result<Stats, AppError> {
    state
        .reads
        .run(user_id, versions, move |conn| {
            let points = score::of(conn, user_id)?.points;
            let (tiers, _) = rarity::model::tiers(conn)?;
            Ok(Stats::compute(conn, user_id, tiers, points)?)
        })
        .await
}

/// The month chart's geometry, in SVG user units.
pub const CHART_W: i64 = 720;
pub const CHART_H: i64 = 220;
/// Room for the value axis on the left and the years below.
const LEFT: i64 = 44;
const BOTTOM: i64 = 22;
const TOP: i64 = 14;

/// One month on the axis (months without unlocks included).
#[derive(Debug, Clone)]
pub struct Month {
    pub label: String,
    pub count: i64,
}

/// One bar of the chart.
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub label: String,
    pub count: i64,
}

/// A labelled line across the chart, or a label under it.
pub struct Tick {
    pub pos: f64,
    pub label: String,
}

/// The month chart: every month from the first unlock to this month.
pub struct Timeline {
    pub months: Vec<Month>,
    pub bars: Vec<Bar>,
    pub y_ticks: Vec<Tick>,
    pub x_ticks: Vec<Tick>,
    /// The busiest month, labelled on the chart.
    pub peak: Option<(f64, f64, i64, String)>,
}

/// Rounds up to a multiple of half the power of ten below `n`, for the
/// axis: 7, 200, 250, 1,500.
fn nice_ceiling(n: i64) -> i64 {
    let mut magnitude = 1;
    while magnitude * 10 <= n {
        magnitude *= 10;
    }
    let unit = (magnitude / 2).max(1);
    (n + unit - 1) / unit * unit
}

fn month_start(t: DateTime<Utc>) -> NaiveDate {
    NaiveDate::from_ymd_opt(t.year(), t.month(), 1).unwrap_or_default()
}

impl Timeline {
    /// Lays out `rows` (months with unlocks, oldest first) on an axis that
    /// runs to `now`'s month, empty months kept.
    pub fn new(rows: &[MonthRow], now: DateTime<Utc>) -> Timeline {
        let mut months = Vec::new();
        if let Some(first) = rows.first() {
            let mut at = month_start(first.month);
            let last = month_start(now).max(month_start(rows[rows.len() - 1].month));
            let mut it = rows.iter().peekable();
            while at <= last {
                let mut count = 0;
                while let Some(r) = it.peek() {
                    match month_start(r.month).cmp(&at) {
                        std::cmp::Ordering::Less => {
                            it.next();
                        }
                        std::cmp::Ordering::Equal => {
                            count += r.count;
                            it.next();
                        }
                        std::cmp::Ordering::Greater => break,
                    }
                }
                months.push(Month { label: at.format("%Y-%m").to_string(), count });
                at = at.checked_add_months(chrono::Months::new(1)).unwrap_or(last.succ_opt().unwrap_or(last));
            }
        }
        let plot_w = (CHART_W - LEFT) as f64;
        let plot_h = (CHART_H - BOTTOM - TOP) as f64;
        let max = nice_ceiling(months.iter().map(|m| m.count).max().unwrap_or(0).max(1));
        let slot = plot_w / months.len().max(1) as f64;
        let gap = if slot > 4.0 { 1.0 } else { 0.0 };
        let bars: Vec<Bar> = months
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let height = m.count as f64 * plot_h / max as f64;
                Bar {
                    x: LEFT as f64 + i as f64 * slot + gap / 2.0,
                    y: TOP as f64 + plot_h - height,
                    width: (slot - gap).max(0.5),
                    height,
                    label: m.label.clone(),
                    count: m.count,
                }
            })
            .collect();
        let y_ticks = [0, max / 2, max]
            .iter()
            .map(|v| Tick { pos: TOP as f64 + plot_h - *v as f64 * plot_h / max as f64, label: v.to_string() })
            .collect();
        // A label under each January (and the first month); every other
        // year when there are many.
        let years: Vec<(usize, &Month)> =
            months.iter().enumerate().filter(|(i, m)| *i == 0 || m.label.ends_with("-01")).collect();
        // Labels closer than this (in user units) would run into each other:
        // the later one is left out.
        const MIN_GAP: f64 = 40.0;
        let mut x_ticks: Vec<Tick> = Vec::new();
        for (i, m) in years {
            let pos = LEFT as f64 + i as f64 * slot;
            if x_ticks.last().is_none_or(|t| pos - t.pos >= MIN_GAP) {
                x_ticks.push(Tick { pos, label: m.label[..4].to_owned() });
            } else if x_ticks.len() == 1 && m.label.ends_with("-01") {
                // A January beats a partial first year.
                x_ticks[0] = Tick { pos, label: m.label[..4].to_owned() };
            }
        }
        let peak = bars
            .iter()
            .filter(|b| b.count > 0)
            .max_by_key(|b| b.count)
            .map(|b| (b.x + b.width / 2.0, b.y - 3.0, b.count, b.label.clone()));
        Timeline { months, bars, y_ticks, x_ticks, peak }
    }

    /// Unlocks per year, oldest first.
    pub fn years(&self) -> Vec<(String, i64)> {
        let mut out: Vec<(String, i64)> = Vec::new();
        for m in &self.months {
            let year = &m.label[..4];
            match out.last_mut() {
                Some((y, n)) if y == year => *n += m.count,
                _ => out.push((year.to_owned(), m.count)),
            }
        }
        out
    }

    /// What the chart shows, in one sentence for screen readers.
    pub fn summary(&self) -> String {
        match (self.months.first(), self.months.last(), &self.peak) {
            (Some(a), Some(b), Some((_, _, n, label))) => {
                format!("Unlocks per month from {} to {}; the busiest month was {label} with {n}.", a.label, b.label)
            }
            _ => "No dated unlocks yet.".to_owned(),
        }
    }
}

/// A horizontal bar in a list: label, count, and its width in percent of
/// the largest.
pub struct Row {
    pub label: String,
    /// A second, smaller line under the label.
    pub note: String,
    pub count: i64,
    pub percent: i64,
    pub class: &'static str,
}

/// Bars for `(label, note, count, class)` items, scaled to the largest.
fn rows(items: Vec<(String, String, i64, &'static str)>) -> Vec<Row> {
    let max = items.iter().map(|i| i.2).max().unwrap_or(0).max(1);
    items
        .into_iter()
        .map(|(label, note, count, class)| Row { label, note, count, percent: count * 100 / max, class })
        .collect()
}

#[derive(Template)]
#[template(path = "steam/stats_body.html")]
struct StatsBody {
    stats: Stats,
    timeline: Timeline,
    years: Vec<Row>,
    spread: Vec<Row>,
    tiers: Vec<Row>,
    current_streak: i64,
    media: url::Url,
    chart_w: i64,
    chart_h: i64,
}

impl StatsBody {
    fn hours(&self) -> String {
        format!("{:.0}", self.stats.totals.minutes as f64 / 60.0)
    }

    fn average(&self) -> String {
        self.stats.totals.average_completion.map(|a| format!("{:.1}%", a * 100.0)).unwrap_or_else(|| "–".into())
    }

    fn tier_of(&self, percent: &Option<f64>) -> Option<Tier> {
        self.stats.tiers.of(percent)
    }

    fn days(n: &i64) -> String {
        match n {
            1 => "1 day".to_owned(),
            n => format!("{n} days"),
        }
    }

    fn icon(&self, g: &PerfectGame) -> Option<String> {
        g.icon_hash.as_ref().map(|h| library::icon_url(&self.media, g.appid, h))
    }
}

/// The page around its body, which is kept rendered: the chart and tables
/// of a long history cost more to write out than everything else a request
/// does (a profile of /stats under load).
#[derive(Template)]
#[template(path = "steam/stats.html")]
struct StatsPage {
    ctx: PageContext,
    body: String,
}

async fn show(ctx: PageContext, current: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let now = Utc::now();
    // The body counts up to this month and today's streak.
    let key = ViewKey::new("stats-page", current.user.id, current.versions, now.date_naive().to_string());
    let media = state.settings.steam_media_url.clone();
    let body = state
        .views
        .get_or(key, || async {
            let stats = stats_for(&state, current.user.id, current.versions).await?;
            body(stats, now, media).render().map_err(|e| AppError::Internal(e.into()))
        })
        .await?;
    render(&StatsPage { ctx, body })
}

fn body(stats: Stats, now: DateTime<Utc>, media: url::Url) -> StatsBody {
    let timeline = Timeline::new(&stats.months, now);
    let years = rows(timeline.years().into_iter().map(|(y, n)| (y, String::new(), n, "")).collect());
    let s = &stats.spread;
    let band = |label: &str, n: i64, class| (label.to_owned(), String::new(), n, class);
    let spread = rows(vec![
        band("Not started (0 %)", s.none, ""),
        band("1–24 %", s.under_25, ""),
        band("25–49 %", s.under_50, ""),
        band("50–74 %", s.under_75, ""),
        band("75–99 %", s.under_100, ""),
        band("Perfect (100 %)", s.perfect, "complete"),
    ]);
    let t = &stats.tier_counts;
    let mut tier_items: Vec<(String, String, i64, &'static str)> = Tier::ALL
        .iter()
        .zip([t.ultra_rare, t.rare, t.uncommon, t.common])
        .map(|(tier, n)| (tier.label().to_owned(), stats.tiers.range(*tier), n, tier.class()))
        .collect();
    if t.unknown > 0 {
        tier_items.push(("Rarity unknown".into(), String::new(), t.unknown, ""));
    }
    let tiers = rows(tier_items);
    let today = Utc.from_utc_datetime(&now.naive_utc()).date_naive();
    let current_streak = stats.streaks.current(today);
    StatsBody { stats, timeline, years, spread, tiers, current_streak, media, chart_w: CHART_W, chart_h: CHART_H }
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/stats").route(web::get().to(show)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month(y: i32, m: u32, count: i64) -> MonthRow {
        MonthRow { month: Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).unwrap(), count }
    }

    #[test]
    fn the_axis_keeps_empty_months_and_runs_to_this_month() {
        let now = Utc.with_ymd_and_hms(2021, 2, 10, 0, 0, 0).unwrap();
        let t = Timeline::new(&[month(2020, 11, 4), month(2021, 1, 10)], now);
        let labels: Vec<&str> = t.months.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(labels, ["2020-11", "2020-12", "2021-01", "2021-02"]);
        assert_eq!(t.months.iter().map(|m| m.count).collect::<Vec<_>>(), [4, 0, 10, 0]);
        assert_eq!(t.years(), [("2020".to_owned(), 4), ("2021".to_owned(), 10)]);
        assert_eq!(t.y_ticks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(), ["0", "5", "10"]);
        assert_eq!(t.x_ticks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(), ["2020", "2021"]);
        assert_eq!(t.peak.as_ref().map(|p| p.2), Some(10));
        assert!(t.summary().contains("busiest month was 2021-01 with 10"));
    }

    #[test]
    fn no_unlocks_draw_no_chart() {
        let t = Timeline::new(&[], Utc::now());
        assert!(t.months.is_empty() && t.bars.is_empty());
        assert_eq!(t.summary(), "No dated unlocks yet.");
    }

    #[test]
    fn axis_maxima_are_round_numbers() {
        assert_eq!(nice_ceiling(1), 1);
        assert_eq!(nice_ceiling(7), 7);
        assert_eq!(nice_ceiling(180), 200);
        assert_eq!(nice_ceiling(240), 250);
        assert_eq!(nice_ceiling(1234), 1500);
    }
}
