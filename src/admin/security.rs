//! The security page: failed sign-ins and lockouts by day, and the
//! addresses that fail most.

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Text};

use crate::auth::extractors::AdminUser;
use crate::db::{self};
use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::render;
use crate::state::AppState;

/// Days shown.
pub const DAYS: i64 = 14;

#[derive(Debug, QueryableByName)]
pub struct DayRow {
    #[diesel(sql_type = Date)]
    pub day: NaiveDate,
    #[diesel(sql_type = BigInt)]
    pub failed_logins: i64,
    #[diesel(sql_type = BigInt)]
    pub lockouts: i64,
}

#[derive(Debug, QueryableByName)]
pub struct IpRow {
    #[diesel(sql_type = Text)]
    pub ip: String,
    #[diesel(sql_type = BigInt)]
    pub failures: i64,
    #[diesel(sql_type = BigInt)]
    pub accounts: i64,
}

#[derive(Template)]
#[template(path = "admin/security.html")]
struct SecurityPage {
    ctx: PageContext,
    days: Vec<DayRow>,
    ips: Vec<IpRow>,
    max: i64,
}

impl SecurityPage {
    /// Bar width in percent of the busiest day.
    fn width(&self, n: &i64) -> i64 {
        if self.max == 0 {
            0
        } else {
            n * 100 / self.max
        }
    }
}

async fn page(ctx: PageContext, _admin: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let (days, ips) = db::run(pool, |conn| {
        let days: Vec<DayRow> = diesel::sql_query(
            "SELECT d::date AS day,
                    count(a.id) FILTER (WHERE a.action = 'login' AND NOT a.success) AS failed_logins,
                    count(a.id) FILTER (WHERE a.action = 'lockout') AS lockouts
             FROM generate_series(current_date - ($1 - 1)::int, current_date, interval '1 day') AS d
             LEFT JOIN audit_log a ON a.event_type = 'auth' AND a.action IN ('login', 'lockout')
                  AND a.occurred_at >= d AND a.occurred_at < d + interval '1 day'
             GROUP BY d ORDER BY d",
        )
        .bind::<BigInt, _>(DAYS)
        .load(conn)?;
        let ips: Vec<IpRow> = diesel::sql_query(
            "SELECT ip, count(*) AS failures, count(DISTINCT target_id) AS accounts
             FROM audit_log
             WHERE event_type = 'auth' AND action = 'login' AND NOT success AND ip IS NOT NULL
               AND occurred_at > now() - make_interval(days => $1::int)
             GROUP BY ip ORDER BY failures DESC, ip LIMIT 10",
        )
        .bind::<BigInt, _>(DAYS)
        .load(conn)?;
        Ok((days, ips))
    })
    .await?;
    let max = days.iter().map(|d| d.failed_logins.max(d.lockouts)).max().unwrap_or(0);
    render(&SecurityPage { ctx, days, ips, max })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/security").route(web::get().to(page)));
}
