//! The numbers cached pages are kept under (see [`crate::views`]): each
//! user's version, moved at commit by triggers on everything their pages
//! show, and the instance's (rarity thresholds, cache epoch, shared
//! version). The session check reads them from the primary; a replica is
//! asked for them before a page is worked out on it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::{instance_settings, user_versions};

/// The numbers a user's cached pages are valid under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Versions {
    /// Moves with every committed change to the user's own data.
    pub user: i64,
    /// Moves with every committed change to what many users see together
    /// (shared goals, totals, profile settings).
    pub shared: i64,
    /// When the rarity thresholds last changed (microseconds).
    pub tiers_at: i64,
    /// Moved by an admin clearing the cached pages.
    pub epoch: i64,
}

impl Versions {
    /// Whether data read under these versions includes everything `wanted`
    /// names: the user's own writes, the rarity thresholds and the admin's
    /// epoch. The shared version is a sequence, whose value a replica may
    /// show ahead of its data, so it is not compared: other users' changes
    /// show once the replica replays them.
    pub fn covers(&self, wanted: &Versions) -> bool {
        self.user >= wanted.user && self.tiers_at >= wanted.tiers_at && self.epoch >= wanted.epoch
    }
}

#[diesel::declare_sql_function]
extern "SQL" {
    /// The number every change to what many users see together moves
    /// (a sequence; see the `user_versions` migration).
    fn shared_version() -> diesel::sql_types::BigInt;
}

/// The instance's numbers every cached page is kept under: when the rarity
/// thresholds changed, the cache epoch and the shared version.
#[diesel::dsl::auto_type]
pub fn instance_versions() -> _ {
    (
        instance_settings::table.select(instance_settings::updated_at).single_value(),
        instance_settings::table.select(instance_settings::cache_epoch).single_value(),
        shared_version(),
    )
}

/// What [`instance_versions`] reads.
pub type InstanceVersions = (Option<DateTime<Utc>>, Option<i64>, i64);

/// The versions from a user's version (none yet: 0) and the instance's.
pub fn versions(user: Option<i64>, (tiers_at, epoch, shared): InstanceVersions) -> Versions {
    Versions {
        user: user.unwrap_or(0),
        shared,
        tiers_at: tiers_at.map_or(0, |t| t.timestamp_micros()),
        epoch: epoch.unwrap_or(0),
    }
}

/// What a visitor's cached pages are kept under: the instance's numbers,
/// with no user of their own.
pub fn visitor_versions(conn: &mut PgConnection) -> QueryResult<Versions> {
    Ok(versions(None, diesel::select(instance_versions()).get_result(conn)?))
}

/// The versions as this connection's snapshot has them, for `user_id` (0
/// for a visitor): a replica compares them with those the session check
/// read from the primary before a page is worked out on it.
pub fn versions_of(conn: &mut PgConnection, user_id: i64) -> QueryResult<Versions> {
    let user = user_versions::table.find(user_id).select(user_versions::version).single_value();
    let (user, instance) = diesel::select((user, instance_versions())).get_result(conn)?;
    Ok(versions(user, instance))
}
