//! Public profiles (`/u/{username}`), private until the owner turns them
//! on and picks what shows; leaderboards for users who opt in; comparing
//! libraries with a public profile; and the weekly digest's preferences
//! and one-click unsubscribe.

pub mod digest;
pub mod model;
pub mod routes;

use diesel::PgConnection;

use crate::achievements::model::GoalCard;
use crate::error::AppError;
use crate::models::history::{self, CommonGame, PerfectGame};
use crate::models::library::{self, LibraryQuery, LibraryRow, Totals};
use crate::models::score::{self, Score};
use model::PublicUser;

/// A profile as a viewer may see it: only the parts its owner shares,
/// each capped, so a profile costs the same whatever its owner stored.
#[derive(Clone, get_size2::GetSize)]
pub struct Profile {
    pub user: PublicUser,
    pub score: Option<Score>,
    pub totals: Option<Totals>,
    pub perfect: Option<Vec<PerfectGame>>,
    pub library: Option<Vec<LibraryRow>>,
    /// One page of the goals, and how many there are.
    pub goals: Option<(Vec<GoalCard>, i64)>,
    /// The page of goals shown.
    pub goals_page: i64,
    /// The owner looking at their own private profile.
    pub preview: bool,
}

/// Games on a profile, most played first.
const PROFILE_GAMES: i64 = 50;
/// Goals on one page of a profile.
pub const PROFILE_GOALS: i64 = 20;

/// The profile of `username` as `viewer` may see it; not found when it is
/// private (unless it is the viewer's own) or does not exist, alike.
pub fn view(
    conn: &mut PgConnection,
    username: &str,
    viewer: Option<i64>,
    goals_page: i64,
) -> Result<Profile, AppError> {
    let mut user = model::find_profile(conn, username)?.ok_or(AppError::NotFound)?;
    let own = viewer == Some(user.id);
    if !user.profile_public && !own {
        return Err(AppError::NotFound);
    }
    // Others see nothing that came from an unproven SteamID: not its
    // name, nor anything synced from it (the page says "not verified").
    if !user.steam_verified && !own {
        user.persona_name = None;
        user.avatar_url = None;
        user.show_stats = false;
        user.show_perfect = false;
        user.show_library = false;
        user.show_goals = false;
    }
    let id = user.id;
    let score = if user.show_stats { Some(score::of(conn, id)?) } else { None };
    let totals = if user.show_stats { Some(library::totals(conn, id)?) } else { None };
    let perfect = if user.show_perfect { Some(history::perfect_games(conn, id, 100)?) } else { None };
    let library = if user.show_library {
        let q = LibraryQuery { sort: Some("playtime".into()), ..LibraryQuery::default() };
        Some(library::library_page(conn, id, &q)?.0.into_iter().take(PROFILE_GAMES as usize).collect())
    } else {
        None
    };
    let goals = if user.show_goals {
        Some(crate::achievements::model::page_for(conn, id, goals_page, PROFILE_GOALS)?)
    } else {
        None
    };
    Ok(Profile { preview: !user.profile_public, user, score, totals, perfect, library, goals, goals_page })
}

/// Games `viewer` and the owner of a public profile that shares its library
/// both own; not found when that profile or its library is not shared, or
/// its SteamID is not proven.
pub fn compare(
    conn: &mut PgConnection,
    username: &str,
    viewer: i64,
) -> Result<(PublicUser, Vec<CommonGame>, i64), AppError> {
    let user = model::find_profile(conn, username)?.ok_or(AppError::NotFound)?;
    if !(user.profile_public && user.show_library && user.steam_verified) {
        return Err(AppError::NotFound);
    }
    let (games, total) = history::common_games(conn, viewer, user.id, 200)?;
    Ok((user, games, total))
}
