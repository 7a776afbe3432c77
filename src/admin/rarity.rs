//! The rarity thresholds of the instance: which share of players makes an
//! achievement ultra rare, rare or uncommon.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use serde::Deserialize;

use crate::audit::{AuditEvent, RequestMeta};
use crate::auth::extractors::AdminUser;
use crate::db;
use crate::error::AppError;
use crate::layout::PageContext;
use crate::rarity::{model, Tiers};
use crate::response::{render, render_status, see_other};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "admin/rarity.html")]
struct RarityPage {
    ctx: PageContext,
    ultra_rare: String,
    rare: String,
    uncommon: String,
    error: Option<&'static str>,
}

fn show_number(v: f64) -> String {
    format!("{}", (v * 100.0).round() / 100.0)
}

async fn show(ctx: PageContext, _admin: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let (tiers, _) = db::run(&state.pool, |conn| Ok(model::tiers(conn)?)).await?;
    render(&RarityPage {
        ctx,
        ultra_rare: show_number(tiers.ultra_rare),
        rare: show_number(tiers.rare),
        uncommon: show_number(tiers.uncommon),
        error: None,
    })
}

/// The form as sent: text, so that anything typed comes back to the admin
/// with a message instead of a bare 400.
#[derive(Deserialize)]
struct RarityForm {
    ultra_rare: String,
    rare: String,
    uncommon: String,
}

fn parse(form: &RarityForm) -> Result<Tiers, &'static str> {
    let n = |s: &str| s.trim().replace(',', ".").trim_end_matches('%').trim().parse::<f64>().ok();
    match (n(&form.ultra_rare), n(&form.rare), n(&form.uncommon)) {
        (Some(u), Some(r), Some(c)) => Tiers::new(u, r, c),
        _ => Err("Each threshold is a number, a percentage of players such as 5 or 12.5."),
    }
}

async fn save(
    ctx: PageContext,
    admin: AdminUser,
    form: web::Form<RarityForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let tiers = match parse(&form) {
        Ok(t) => t,
        Err(error) => {
            return render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &RarityPage {
                    ctx,
                    ultra_rare: form.ultra_rare,
                    rare: form.rare,
                    uncommon: form.uncommon,
                    error: Some(error),
                },
            )
        }
    };
    let actor = admin.0.user.id;
    db::run(&state.pool, move |conn| {
        model::set_tiers(conn, tiers, actor)?;
        AuditEvent::new("admin", "rarity_tiers", &meta)
            .actor(actor)
            .target_text(format!("{}/{}/{}", tiers.ultra_rare, tiers.rare, tiers.uncommon))
            .record(conn)?;
        Ok(())
    })
    .await?;
    FlashMessage::success("Rarity thresholds saved. Every page uses them from now on.").send();
    Ok(see_other("/admin/rarity"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/rarity").route(web::get().to(show)).route(web::post().to(save)));
}
