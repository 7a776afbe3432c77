//! The instance's Steam key and SteamID conflicts: the key lent to users
//! without their own (set here or by `STEAM_API_KEY`), today's use of it by
//! user, and every attempt to take a SteamID another account holds.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use crate::audit::RequestMeta;
use crate::auth::extractors::AdminUser;
use crate::auth::reauth::require_recent_auth;
use crate::error::{AppError, Outcome};
use crate::layout::PageContext;
use crate::pagination::PageQuery;
use crate::response::{render, render_status, see_other};
use crate::state::AppState;
use crate::steam::instance_key::Source;
use crate::steam::link::{self, AdminOverview};

#[derive(Template)]
#[template(path = "admin/steam.html")]
struct SteamPage {
    ctx: PageContext,
    o: AdminOverview,
    budget: u64,
    share: u64,
    page: i64,
    pages: i64,
    error: Option<String>,
}

impl SteamPage {
    fn key_from_env(&self) -> bool {
        self.o.key.as_ref().is_some_and(|k| k.source == Source::Environment)
    }

    /// The holder named still holds the SteamID.
    fn holds(&self, c: &crate::steam::conflicts::Conflict) -> bool {
        c.holder_steam_id == Some(c.steam_id)
    }

    fn page_link(&self, page: &i64) -> String {
        format!("/admin/steam?page={page}#conflicts")
    }

    fn percent(&self) -> u64 {
        (self.o.usage.calls * 100).checked_div(self.budget).unwrap_or(0)
    }
}

async fn page(ctx: PageContext, state: &AppState, page: i64, error: Option<String>) -> Result<SteamPage, AppError> {
    let o = link::admin_overview(state, page).await?;
    let pages = crate::pagination::page_count(o.conflicts_total, 50);
    Ok(SteamPage {
        ctx,
        o,
        budget: state.settings.steam_daily_call_budget,
        share: state.settings.steam_shared_calls_per_user,
        page,
        pages,
        error,
    })
}

async fn show(
    ctx: PageContext,
    _admin: AdminUser,
    query: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    render(&page(ctx, &state, query.number(), None).await?)
}

#[derive(Deserialize)]
pub struct KeyForm {
    api_key: SecretString,
}

async fn set_key(
    req: HttpRequest,
    ctx: PageContext,
    admin: AdminUser,
    form: web::Form<KeyForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    require_recent_auth(&req, "/admin/steam")?;
    match link::set_instance_key(&state, admin.0.user.id, &form.api_key, &meta).await? {
        Outcome::Done(()) => {
            FlashMessage::success("The instance key is saved; users without their own key sync with it.").send();
            Ok(see_other("/admin/steam"))
        }
        Outcome::Refused(e) => render_status(StatusCode::UNPROCESSABLE_ENTITY, &page(ctx, &state, 1, Some(e)).await?),
    }
}

async fn remove_key(
    req: HttpRequest,
    admin: AdminUser,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    require_recent_auth(&req, "/admin/steam")?;
    if link::clear_instance_key(&state, admin.0.user.id, &meta).await? {
        FlashMessage::info("The key set here is removed.").send();
    }
    Ok(see_other("/admin/steam"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/steam").route(web::get().to(show)))
        .service(web::resource("/admin/steam/key").route(web::post().to(set_key)))
        .service(web::resource("/admin/steam/key/remove").route(web::post().to(remove_key)));
}
