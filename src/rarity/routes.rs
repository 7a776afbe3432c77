//! `/help/points`: how rarity tiers and points are worked out, with the
//! instance's own thresholds and worked examples.

use actix_web::{web, HttpResponse};
use askama::Template;

use super::{points, Tier, Tiers};
use crate::db;
use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::render;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "help/points.html")]
struct PointsHelp {
    ctx: PageContext,
    tiers: Tiers,
    /// (percent of players, points) for a few percentages.
    examples: Vec<(f64, i32)>,
}

impl PointsHelp {
    fn all(&self) -> [Tier; 4] {
        Tier::ALL
    }
}

async fn help(ctx: PageContext, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let (tiers, _) = db::run(&state.pool, |conn| Ok(super::model::tiers(conn)?)).await?;
    let examples = [100.0, 50.0, 20.0, 5.0, 1.0, 0.1].iter().map(|p| (*p, points(Some(*p)))).collect();
    render(&PointsHelp { ctx, tiers, examples })
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/help/points").route(web::get().to(help)));
}
