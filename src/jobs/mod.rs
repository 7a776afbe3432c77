//! Background work: one queue in PostgreSQL for every kind of job (Steam
//! syncs, mail), the worker that runs them, and the scheduled housekeeping
//! one elected process runs.

pub mod kind;
pub mod model;
pub mod schedule;
pub mod worker;

/// Queues the daily resync of every linked account due one (what the
/// scheduler does every ten minutes). Returns how many were queued.
pub fn enqueue_daily_resyncs(conn: &mut diesel::PgConnection) -> diesel::QueryResult<usize> {
    model::enqueue_daily(conn, STEAM_SYNC)
}

/// The queue's name for a Steam sync; the kind itself lives with the Steam
/// code, which registers it at start-up.
pub const STEAM_SYNC: &str = "steam_sync";
