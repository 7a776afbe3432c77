//! The dashboard: what a signed-in user sees first. A new user gets the
//! next step (link Steam, wait for the first sync); then recent unlocks,
//! the games closest to perfect, the goals closest to being met, and the
//! state of the sync.

use actix_web::{web, HttpResponse};
use askama::Template;

use crate::achievements::model::{self as goals, GoalCard};
use crate::auth::extractors::CurrentUser;
use crate::error::AppError;
use crate::jobs::model::{self as jobs, Job};
use crate::jobs::STEAM_SYNC;
use crate::layout::PageContext;
use crate::models::history::{self, UnlockItem};
use crate::models::library::{self, LibraryRow};
use crate::models::score::{self, Score};
use crate::pins::PinnedAchievement;
use crate::rarity::{self, Tiers};
use crate::response::render;
use crate::state::AppState;
use crate::steam::model::SteamAccount;
use crate::views::ViewKey;

/// Everything the dashboard shows.
#[derive(Clone, get_size2::GetSize)]
struct Overview {
    account: Option<SteamAccount>,
    job: Option<Job>,
    recent: Vec<UnlockItem>,
    closest: Vec<LibraryRow>,
    goals: Vec<GoalCard>,
    score: Score,
    tiers: Tiers,
    pinned_achievements: Vec<PinnedAchievement>,
    pinned_goals: Vec<GoalCard>,
}

fn load(conn: &mut diesel::PgConnection, user_id: i64) -> diesel::QueryResult<Overview> {
    Ok(Overview {
        account: SteamAccount::find(conn, user_id)?,
        job: jobs::latest(conn, STEAM_SYNC, user_id)?,
        recent: history::recent_unlocks(conn, user_id, 8)?,
        closest: library::closest_to_perfect(conn, user_id, 5)?,
        goals: goals::closest_to_met(conn, user_id, 5)?,
        score: score::of(conn, user_id)?,
        tiers: rarity::model::tiers(conn)?.0,
        pinned_achievements: crate::pins::pinned_achievements(conn, user_id)?,
        pinned_goals: goals::pinned_for(conn, user_id)?,
    })
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    ctx: PageContext,
    username: String,
    o: Overview,
    media: url::Url,
}

impl DashboardPage {
    fn tiers(&self) -> &Tiers {
        &self.o.tiers
    }

    /// What a new user should do next, if anything.
    fn next_step(&self) -> Option<(&'static str, &'static str, &'static str)> {
        let linked = self.o.account.as_ref().is_some_and(|a| a.is_linked());
        if !linked {
            return Some((
                "Link your Steam account",
                "Sign in through Steam once, and Questline syncs your library, playtime and achievements.",
                "/settings/steam",
            ));
        }
        if self.o.account.as_ref().is_some_and(|a| !a.is_verified()) {
            return Some((
                "Verify your Steam account",
                "Your Steam account was linked before Questline asked for proof: until you sign in through Steam \
                 once, you are not on leaderboards or compare, and your profile says \"not verified\".",
                "/settings/steam",
            ));
        }
        let synced = self.o.account.as_ref().is_some_and(|a| a.last_synced_at.is_some());
        if !synced {
            return Some((
                "Your first sync is running",
                "Your games and achievements appear here as soon as it ends. You can follow it on the Steam page.",
                "/settings/steam",
            ));
        }
        None
    }

    fn sync_state(&self) -> String {
        match (&self.o.job, self.o.account.as_ref().and_then(|a| a.last_synced_at)) {
            (Some(j), _) if !j.status.is_over() => {
                format!("Syncing: {} of {} games", j.progress_done, j.progress_total)
            }
            (_, Some(t)) => format!("Last synced {}", t.format("%Y-%m-%d %H:%M UTC")),
            _ => "Not synced yet".to_owned(),
        }
    }
}

async fn show(ctx: PageContext, current: CurrentUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let user_id = current.user.id;
    let key = ViewKey::new("dashboard", user_id, current.versions, "");
    let o = state.views.load(&state.reads, key, move |conn| Ok(load(conn, user_id)?)).await?;
    let media = state.settings.steam_media_url.clone();
    render(&DashboardPage { ctx, username: current.user.username, o, media })
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/dashboard").route(web::get().to(show)));
}
