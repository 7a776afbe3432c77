//! Reads for pages that only read: from a streaming replica when one is
//! configured (`DATABASE_REPLICA_URL`) and current enough, else from the
//! primary.
//!
//! Read-your-writes does not rest on a time window. Every page that reads
//! here is cached under the versions the session check read from the
//! primary (see [`crate::views`]), and every write that changes what such a
//! page shows moves the user's version at commit, whichever node or worker
//! made it. So before a page is worked out on the replica, the same
//! snapshot is asked whether it has the user's version (and the instance's
//! rarity and cache numbers) yet; when it has not, the page reads from the
//! primary. A session that wrote a moment ago therefore reads the primary
//! for exactly as long as the replica lacks that write, however long the
//! lag. Other users' changes show on the replica once it replays them.
//!
//! A probe in each process compares the primary's WAL position with the
//! replica's replay position twice a second. When the replica cannot be
//! reached, or has not replayed what the primary wrote more than
//! `REPLICA_MAX_LAG_SECONDS` ago, every read goes to the primary until it
//! has caught up again; `/metrics` counts these fallbacks by reason.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable};

use crate::db::{self, PgPool};
use crate::error::AppError;
use crate::versions::Versions;

/// How often each process measures the replica's lag.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);

/// Why a read went to the primary although a replica is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The replica did not answer.
    Down,
    /// The replica is further behind than the bound allows.
    Lagging,
    /// The replica had not yet replayed this user's latest write.
    Behind,
    /// The read failed on the replica (a query cancelled by a conflict
    /// with recovery, say) and was tried again on the primary.
    Failed,
    /// Every connection to the replica was in use.
    Busy,
}

impl Fallback {
    /// Every reason, for the metrics.
    pub const ALL: [Fallback; 5] =
        [Fallback::Down, Fallback::Lagging, Fallback::Behind, Fallback::Failed, Fallback::Busy];

    /// The reason's label on `/metrics`.
    pub fn label(self) -> &'static str {
        match self {
            Fallback::Down => "down",
            Fallback::Lagging => "lagging",
            Fallback::Behind => "behind",
            Fallback::Failed => "failed",
            Fallback::Busy => "busy",
        }
    }
}

/// What the probe last found and what reads did, shared by every clone.
#[derive(Default)]
struct Health {
    /// Whether reads may use the replica.
    usable: AtomicBool,
    /// Why not, when they may not (`Fallback as usize`).
    unusable_because: AtomicU64,
    /// The replica's lag in milliseconds as last measured; -1 when unknown.
    lag_ms: AtomicI64,
    replica_reads: AtomicU64,
    fallbacks: [AtomicU64; 5],
}

impl Health {
    fn set(&self, usable: bool, because: Fallback) {
        self.unusable_because.store(because as u64, Ordering::Relaxed);
        if self.usable.swap(usable, Ordering::AcqRel) != usable {
            if usable {
                tracing::warn!("the read replica is usable again; pages read from it");
            } else {
                tracing::warn!(reason = because.label(), "the read replica is not usable; pages read from the primary");
            }
        }
    }

    fn because(&self) -> Fallback {
        match self.unusable_because.load(Ordering::Relaxed) {
            0 => Fallback::Down,
            _ => Fallback::Lagging,
        }
    }
}

/// A snapshot of the replica's state and counters, for `/metrics` and the
/// admin dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaStatus {
    /// Whether reads use it now.
    pub usable: bool,
    /// Its lag as last measured, when known.
    pub lag: Option<Duration>,
    /// Reads served by it since this process started.
    pub reads: u64,
    /// Reads that went to the primary instead, by reason.
    pub fallbacks: [(Fallback, u64); 5],
}

#[derive(Clone)]
struct Replica {
    pool: PgPool,
    health: Arc<Health>,
}

/// Where read-only pages read from: the primary, and a replica if configured.
#[derive(Clone)]
pub struct Reads {
    primary: PgPool,
    replica: Option<Replica>,
    /// Every read refuses tables no version trigger watches
    /// ([`crate::versions::checked_read`]); on in debug builds.
    check_tables: bool,
}

/// The error of a read on the replica, telling a lost replica from the
/// page's own errors (a 404 stays a 404, not a retry on the primary).
enum OnReplica<T> {
    Read(Result<T, AppError>),
    Behind,
    Lost(AppError),
    Failed(AppError),
    Busy,
}

impl Reads {
    /// Reads from the primary only.
    pub fn primary_only(primary: PgPool) -> Self {
        Reads { primary, replica: None, check_tables: cfg!(debug_assertions) }
    }

    /// Reads from `replica` while it is usable. It counts as unusable until
    /// the first probe ([`Reads::probe`]) finds it current.
    pub fn with_replica(primary: PgPool, replica: PgPool) -> Self {
        Reads {
            primary,
            replica: Some(Replica { pool: replica, health: Arc::default() }),
            check_tables: cfg!(debug_assertions),
        }
    }

    /// The replica's state, when one is configured.
    pub fn status(&self) -> Option<ReplicaStatus> {
        let r = self.replica.as_ref()?;
        let h = &r.health;
        let lag = h.lag_ms.load(Ordering::Relaxed);
        Some(ReplicaStatus {
            usable: h.usable.load(Ordering::Acquire),
            lag: u64::try_from(lag).ok().map(Duration::from_millis),
            reads: h.replica_reads.load(Ordering::Relaxed),
            fallbacks: Fallback::ALL.map(|f| (f, h.fallbacks[f as usize].load(Ordering::Relaxed))),
        })
    }

    /// Runs `read` where the data is current for this viewer: on the
    /// replica when it is usable and has replayed everything `versions` was
    /// read under (the user's own writes included), else on the primary.
    /// `user_id` is 0 for a visitor.
    pub async fn run<T, F>(&self, user_id: i64, versions: Versions, read: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: Fn(&mut PgConnection) -> Result<T, AppError> + Send + Sync + 'static,
    {
        let check = self.check_tables;
        let read = move |conn: &mut PgConnection| {
            if check {
                crate::versions::checked_read(conn, &read)
            } else {
                read(conn)
            }
        };
        let Some(replica) = &self.replica else { return db::run(&self.primary, read).await };
        let health = &replica.health;
        if !health.usable.load(Ordering::Acquire) {
            return self.fall_back(health, health.because(), read).await;
        }
        let read = Arc::new(read);
        let on_replica = read.clone();
        let pool = replica.pool.clone();
        let span = tracing::Span::current();
        let outcome = actix_web::web::block(move || {
            let _entered = span.enter();
            let mut conn = match pool.get() {
                Ok(c) => c,
                // Every connection open and in use: the replica answers,
                // this process just asks more of it than its pool holds.
                Err(_) if pool.state().idle_connections == 0 && pool.state().connections >= pool.max_size() => {
                    return OnReplica::Busy
                }
                Err(e) => return OnReplica::Lost(AppError::database_unavailable(e)),
            };
            read_on_replica(&mut conn, user_id, versions, &*on_replica)
        })
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("blocking pool: {e}")))?;
        let why = match outcome {
            OnReplica::Read(result) => {
                health.replica_reads.fetch_add(1, Ordering::Relaxed);
                return result;
            }
            OnReplica::Behind => Fallback::Behind,
            OnReplica::Busy => Fallback::Busy,
            OnReplica::Failed(e) => {
                tracing::warn!(error = %e, "a read failed on the replica; it is tried again on the primary");
                Fallback::Failed
            }
            OnReplica::Lost(e) => {
                tracing::warn!(error = %e, "the replica was lost during a read; it is tried again on the primary");
                health.set(false, Fallback::Down);
                Fallback::Down
            }
        };
        self.fall_back(health, why, move |c| read(c)).await
    }

    async fn fall_back<T, F>(&self, health: &Health, why: Fallback, read: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut PgConnection) -> Result<T, AppError> + Send + 'static,
    {
        health.fallbacks[why as usize].fetch_add(1, Ordering::Relaxed);
        db::run(&self.primary, read).await
    }

    /// Measures the replica's lag once and decides whether reads may use it.
    /// `pending` keeps the primary's recent WAL positions between calls.
    pub async fn probe(&self, pending: &mut Pending, max_lag: Duration) {
        let Some(replica) = &self.replica else { return };
        let health = &replica.health;
        let now = Instant::now();
        let primary = db::blocking(&self.primary, wal_position).await;
        let standby = db::blocking(&replica.pool, replay_position).await;
        match (primary, standby) {
            (_, Err(e)) => {
                tracing::debug!(error = %e, "the replica did not answer the probe");
                health.lag_ms.store(-1, Ordering::Relaxed);
                health.set(false, Fallback::Down);
            }
            // The primary is down: nothing to compare with, and the session
            // check fails anyway; the replica's state is left as it was.
            (Err(_), Ok(_)) => {}
            (Ok(_), Ok(Replay { standby: false, .. })) => {
                // A server that is not a streaming standby (a promoted one,
                // a logical copy) has no replay position to compare; the
                // per-read version check alone keeps reads current.
                health.lag_ms.store(-1, Ordering::Relaxed);
                health.set(true, Fallback::Lagging);
            }
            (Ok(written), Ok(Replay { replayed, .. })) => {
                let lag = pending.lag(now, written, replayed.unwrap_or(0));
                health.lag_ms.store(i64::try_from(lag.as_millis()).unwrap_or(i64::MAX), Ordering::Relaxed);
                health.set(lag <= max_lag, Fallback::Lagging);
            }
        }
    }

    /// Probes the replica every [`PROBE_EVERY`] for as long as the process
    /// runs; nothing when no replica is configured.
    pub fn spawn_probe(&self, max_lag: Duration) {
        if self.replica.is_none() {
            return;
        }
        let reads = self.clone();
        actix_web::rt::spawn(async move {
            let mut pending = Pending::default();
            let mut every = actix_web::rt::time::interval(PROBE_EVERY);
            loop {
                every.tick().await;
                reads.probe(&mut pending, max_lag).await;
            }
        });
    }
}

/// Reads on the replica in one snapshot: first whether it holds what the
/// viewer's versions say, then the page.
fn read_on_replica<T>(
    conn: &mut PgConnection,
    user_id: i64,
    versions: Versions,
    read: &dyn Fn(&mut PgConnection) -> Result<T, AppError>,
) -> OnReplica<T> {
    let result = conn.build_transaction().read_only().repeatable_read().run(|conn| {
        let there = crate::versions::versions_of(conn, user_id)?;
        if !there.covers(&versions) {
            return Ok(None);
        }
        read(conn).map(Some)
    });
    match result {
        Ok(Some(value)) => OnReplica::Read(Ok(value)),
        Ok(None) => OnReplica::Behind,
        Err(e @ AppError::Unavailable(_)) => OnReplica::Lost(e),
        Err(e @ AppError::Internal(_)) => OnReplica::Failed(e),
        Err(e) => OnReplica::Read(Err(e)),
    }
}

#[derive(QueryableByName)]
struct Written {
    #[diesel(sql_type = BigInt)]
    lsn: i64,
}

#[derive(QueryableByName)]
struct Replay {
    #[diesel(sql_type = Bool)]
    standby: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    replayed: Option<i64>,
}

fn wal_position(conn: &mut PgConnection) -> QueryResult<i64> {
    Ok(diesel::sql_query("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint AS lsn")
        .get_result::<Written>(conn)?
        .lsn)
}

fn replay_position(conn: &mut PgConnection) -> QueryResult<Replay> {
    diesel::sql_query(
        "SELECT pg_is_in_recovery() AS standby, (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint AS replayed",
    )
    .get_result(conn)
}

/// The primary's WAL positions the replica has not replayed yet, with when
/// each was read: the replica's lag is the age of the oldest.
#[derive(Debug, Default)]
pub struct Pending {
    positions: VecDeque<(Instant, i64)>,
}

/// Positions kept at most; the oldest always stays, so a replica that
/// stopped replaying keeps its true lag.
const PENDING_KEPT: usize = 256;

impl Pending {
    /// Notes the primary's position `written` read at `now` and the
    /// replica's `replayed`, and gives the lag.
    pub fn lag(&mut self, now: Instant, written: i64, replayed: i64) -> Duration {
        self.positions.push_back((now, written));
        while self.positions.front().is_some_and(|&(_, lsn)| lsn <= replayed) {
            self.positions.pop_front();
        }
        if self.positions.len() > PENDING_KEPT {
            self.positions.remove(1);
        }
        self.positions.front().map_or(Duration::ZERO, |&(at, _)| now.saturating_duration_since(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_that_keeps_up_has_no_lag() {
        let mut p = Pending::default();
        let t = Instant::now();
        assert_eq!(p.lag(t, 100, 100), Duration::ZERO);
        assert_eq!(p.lag(t + Duration::from_secs(1), 200, 200), Duration::ZERO);
    }

    #[test]
    fn lag_is_the_age_of_the_oldest_position_not_yet_replayed() {
        let mut p = Pending::default();
        let t = Instant::now();
        assert_eq!(p.lag(t, 100, 50), Duration::ZERO);
        assert_eq!(p.lag(t + Duration::from_secs(2), 150, 60), Duration::from_secs(2));
        // It replays up to 100: the position read at t+2 is the oldest left.
        assert_eq!(p.lag(t + Duration::from_secs(3), 150, 120), Duration::from_secs(1));
        assert_eq!(p.lag(t + Duration::from_secs(4), 150, 150), Duration::ZERO);
    }

    #[test]
    fn a_replica_that_stopped_replaying_keeps_growing_its_lag() {
        let mut p = Pending::default();
        let t = Instant::now();
        for s in 0..1000 {
            p.lag(t + Duration::from_secs(s), 1000 + s as i64, 10);
        }
        assert_eq!(p.lag(t + Duration::from_secs(1000), 5000, 10), Duration::from_secs(1000));
        assert!(p.positions.len() <= PENDING_KEPT + 1);
    }
}
