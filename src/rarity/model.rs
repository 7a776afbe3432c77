//! The instance's rarity thresholds (`instance_settings`, one row).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::Tiers;
use crate::schema::instance_settings;

/// The thresholds and when they last changed (part of cache keys).
pub fn tiers(conn: &mut PgConnection) -> QueryResult<(Tiers, DateTime<Utc>)> {
    let row: Option<(f64, f64, f64, DateTime<Utc>)> = instance_settings::table
        .select((
            instance_settings::ultra_rare_max,
            instance_settings::rare_max,
            instance_settings::uncommon_max,
            instance_settings::updated_at,
        ))
        .first(conn)
        .optional()?;
    Ok(match row {
        Some((ultra_rare, rare, uncommon, at)) => (Tiers { ultra_rare, rare, uncommon }, at),
        None => (Tiers::default(), DateTime::<Utc>::UNIX_EPOCH),
    })
}

/// Stores new thresholds, already checked by [`Tiers::new`].
pub fn set_tiers(conn: &mut PgConnection, tiers: Tiers, admin_id: i64) -> QueryResult<()> {
    diesel::insert_into(instance_settings::table)
        .values((
            instance_settings::id.eq(true),
            instance_settings::ultra_rare_max.eq(tiers.ultra_rare),
            instance_settings::rare_max.eq(tiers.rare),
            instance_settings::uncommon_max.eq(tiers.uncommon),
            instance_settings::updated_at.eq(diesel::dsl::now),
            instance_settings::updated_by.eq(admin_id),
        ))
        .on_conflict(instance_settings::id)
        .do_update()
        .set((
            instance_settings::ultra_rare_max.eq(tiers.ultra_rare),
            instance_settings::rare_max.eq(tiers.rare),
            instance_settings::uncommon_max.eq(tiers.uncommon),
            instance_settings::updated_at.eq(diesel::dsl::now),
            instance_settings::updated_by.eq(admin_id),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Moves the cache epoch: every process's cached pages stop being used,
/// since every request reads the epoch with its session.
pub fn clear_cached_pages(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::update(instance_settings::table)
        .set(instance_settings::cache_epoch.eq(instance_settings::cache_epoch + 1))
        .execute(conn)
        .map(|_| ())
}
