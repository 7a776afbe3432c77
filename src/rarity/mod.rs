//! Rarity tiers and points: how rare an achievement is among all Steam
//! players (Steam's global percentage), named in tiers whose thresholds an
//! admin may change, and scored with Exophase's formula.
//!
//! Points are computed by PostgreSQL (a generated column on
//! `game_achievements`, summed per library entry and per user by
//! `models::library` and `models::score`); [`points`] is the same formula
//! in Rust, for the help page's examples and the test that both agree.

pub mod model;
pub mod routes;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::models::library::{self, PointsScope};
use crate::models::score;

/// The rarity tiers, rarest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tier {
    UltraRare,
    Rare,
    Uncommon,
    Common,
}

impl Tier {
    /// Every tier, rarest first.
    pub const ALL: [Tier; 4] = [Tier::UltraRare, Tier::Rare, Tier::Uncommon, Tier::Common];

    /// The tier's name as users read it.
    pub fn label(self) -> &'static str {
        match self {
            Tier::UltraRare => "Ultra rare",
            Tier::Rare => "Rare",
            Tier::Uncommon => "Uncommon",
            Tier::Common => "Common",
        }
    }

    /// The CSS class that colours the tier's badge.
    pub fn class(self) -> &'static str {
        match self {
            Tier::UltraRare => "tier-ultra",
            Tier::Rare => "tier-rare",
            Tier::Uncommon => "tier-uncommon",
            Tier::Common => "tier-common",
        }
    }
}

/// The upper bounds (in percent of players, inclusive) of the three rarer
/// tiers; everything above `uncommon` is common.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, get_size2::GetSize)]
pub struct Tiers {
    pub ultra_rare: f64,
    pub rare: f64,
    pub uncommon: f64,
}

impl Default for Tiers {
    fn default() -> Self {
        Tiers { ultra_rare: 5.0, rare: 20.0, uncommon: 50.0 }
    }
}

impl Tiers {
    /// Checks an admin's thresholds: each above the one before, all inside
    /// (0, 100).
    pub fn new(ultra_rare: f64, rare: f64, uncommon: f64) -> Result<Tiers, &'static str> {
        let ok = |v: f64| v.is_finite() && v > 0.0 && v < 100.0;
        if !(ok(ultra_rare) && ok(rare) && ok(uncommon)) {
            return Err("Each threshold is a percentage above 0 and below 100.");
        }
        if !(ultra_rare < rare && rare < uncommon) {
            return Err("Each threshold must be higher than the one before it: ultra rare, then rare, then uncommon.");
        }
        Ok(Tiers { ultra_rare, rare, uncommon })
    }

    /// The tier of an achievement unlocked by `percent` of players; `None`
    /// when Steam gave no percentage. Takes the value or a reference, as
    /// templates hand fields by reference.
    pub fn of(&self, percent: impl std::borrow::Borrow<Option<f64>>) -> Option<Tier> {
        let p = (*percent.borrow())?;
        Some(if p <= self.ultra_rare {
            Tier::UltraRare
        } else if p <= self.rare {
            Tier::Rare
        } else if p <= self.uncommon {
            Tier::Uncommon
        } else {
            Tier::Common
        })
    }

    /// The tier's range in words, for legends and the help page.
    pub fn range(&self, tier: Tier) -> String {
        let f = |v: f64| format!("{}", (v * 100.0).round() / 100.0);
        match tier {
            Tier::UltraRare => format!("{} % of players or fewer", f(self.ultra_rare)),
            Tier::Rare => format!("over {} % up to {} %", f(self.ultra_rare), f(self.rare)),
            Tier::Uncommon => format!("over {} % up to {} %", f(self.rare), f(self.uncommon)),
            Tier::Common => format!("over {} %", f(self.uncommon)),
        }
    }
}

/// Points for an achievement unlocked by `percent` of players: Exophase's
/// `(sqrt(100 / percent) - 1) * 1000 + 50`, the percentage floored at
/// 0.01; unknown rarity is worth the base 50. The database's generated
/// column `game_achievements.points` computes the same.
pub fn points(percent: Option<f64>) -> i32 {
    match percent {
        None => 50,
        // PostgreSQL rounds float8 halves to even; so does this.
        Some(p) => (((100.0 / p.max(0.01)).sqrt() - 1.0) * 1000.0 + 50.0).round_ties_even() as i32,
    }
}

/// Works out again the points of these users' libraries and their totals
/// (after a sync, an import or an unlink changed their libraries).
pub fn rescore_users(conn: &mut PgConnection, user_ids: &[i64]) -> QueryResult<()> {
    conn.transaction(|conn| {
        score::lock(conn, user_ids, &[])?;
        library::refresh_points(conn, PointsScope::Users(user_ids))?;
        let totals = library::totals_of(conn, user_ids)?;
        score::store(conn, &totals).map(|_| ())
    })
}

/// Works out again every owner's points in these games, whose global
/// percentages changed; owners' totals move by the difference. Returns how
/// many users' totals moved.
pub fn rescore_games(conn: &mut PgConnection, appids: &[i64]) -> QueryResult<usize> {
    conn.transaction(|conn| {
        score::lock(conn, &[], appids)?;
        let deltas = library::refresh_points(conn, PointsScope::Games(appids))?;
        score::add_points(conn, &deltas)
    })
}

/// Works out again the points in these games and the whole totals of
/// `owners` (their perfect games move when a game's achievement count
/// does): after a schema change. Only the games' entries are summed again
/// entry by entry; the totals are one aggregate per owner.
pub fn rescore_owners(conn: &mut PgConnection, appids: &[i64], owners: &[i64]) -> QueryResult<()> {
    conn.transaction(|conn| {
        score::lock(conn, owners, &[])?;
        library::refresh_points(conn, PointsScope::Games(appids))?;
        let totals = library::totals_of(conn, owners)?;
        score::store(conn, &totals).map(|_| ())
    })
}

/// What [`rescore_command`] did.
#[derive(Debug)]
pub struct Rescored {
    pub users: usize,
    pub games: usize,
    /// Users whose totals moved (game mode only).
    pub moved: usize,
    pub seconds: f64,
}

/// Users per statement when every library is worked out again.
const USERS_PER_BATCH: usize = 250;
/// Games per statement when games' percentages changed.
const GAMES_PER_BATCH: usize = 100;

/// The `questline rescore` command: every user's points from scratch
/// (`games` is `None`), or every owner's in these games (`all`, or app ids
/// separated by commas) after their global percentages changed. Each batch
/// is its own transaction.
pub fn rescore_command(conn: &mut PgConnection, games: Option<&str>) -> anyhow::Result<Rescored> {
    use crate::schema::{games as games_table, users};
    let started = std::time::Instant::now();
    match games {
        None => {
            let ids: Vec<i64> = users::table.select(users::id).order(users::id).load(conn)?;
            for chunk in ids.chunks(USERS_PER_BATCH) {
                conn.transaction(|conn| rescore_users(conn, chunk))?;
            }
            Ok(Rescored { users: ids.len(), games: 0, moved: 0, seconds: started.elapsed().as_secs_f64() })
        }
        Some(list) => {
            let appids: Vec<i64> = if list.trim() == "all" {
                games_table::table.select(games_table::appid).order(games_table::appid).load(conn)?
            } else {
                list.split(',')
                    .map(|s| s.trim().parse::<i64>().map_err(|_| anyhow::anyhow!("{s:?} is not an app id")))
                    .collect::<Result<_, _>>()?
            };
            let mut moved = 0;
            for chunk in appids.chunks(GAMES_PER_BATCH) {
                moved += conn.transaction(|conn| rescore_games(conn, chunk))?;
            }
            Ok(Rescored { users: 0, games: appids.len(), moved, seconds: started.elapsed().as_secs_f64() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_include_their_upper_bound() {
        let t = Tiers::default();
        assert_eq!(t.of(Some(5.0)), Some(Tier::UltraRare));
        assert_eq!(t.of(Some(5.01)), Some(Tier::Rare));
        assert_eq!(t.of(Some(20.0)), Some(Tier::Rare));
        assert_eq!(t.of(Some(50.0)), Some(Tier::Uncommon));
        assert_eq!(t.of(Some(50.1)), Some(Tier::Common));
        assert_eq!(t.of(None), None);
    }

    #[test]
    fn thresholds_must_rise_and_stay_inside_the_percent_range() {
        assert!(Tiers::new(1.0, 10.0, 40.0).is_ok());
        assert!(Tiers::new(10.0, 10.0, 40.0).is_err());
        assert!(Tiers::new(0.0, 10.0, 40.0).is_err());
        assert!(Tiers::new(1.0, 10.0, 100.0).is_err());
        assert!(Tiers::new(f64::NAN, 10.0, 40.0).is_err());
    }

    #[test]
    fn points_follow_the_exophase_formula() {
        assert_eq!(points(Some(100.0)), 50);
        assert_eq!(points(Some(25.0)), 1050);
        assert_eq!(points(Some(1.0)), 9050);
        assert_eq!(points(Some(0.0)), 99050);
        assert_eq!(points(None), 50);
    }
}
