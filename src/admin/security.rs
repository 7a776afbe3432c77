//! The security page: failed sign-ins and lockouts by day, and the
//! addresses that fail most.

use actix_web::{web, HttpResponse};
use askama::Template;

use crate::audit::{self, DayRow, IpRow};
use crate::auth::extractors::AdminUser;
use crate::db::{self};
use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::render;
use crate::state::AppState;

/// Days shown.
pub const DAYS: i64 = 14;

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
        let days = audit::sign_in_failures_by_day(conn, DAYS)?;
        let ips = audit::failing_addresses(conn, DAYS)?;
        Ok((days, ips))
    })
    .await?;
    let max = days.iter().map(|d| d.failed_logins.max(d.lockouts)).max().unwrap_or(0);
    render(&SecurityPage { ctx, days, ips, max })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/security").route(web::get().to(page)));
}
