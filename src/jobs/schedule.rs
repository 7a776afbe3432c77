//! Housekeeping on a schedule (queueing the daily resyncs, purging the audit
//! log, sweeping unused image files), run by one elected process however
//! many `serve` and `worker` processes share the database.
//!
//! The election is a PostgreSQL session advisory lock held on a connection
//! of its own: whoever holds it runs the tasks; if that process dies or
//! loses its connection, PostgreSQL releases the lock and another process
//! takes over at its next try.

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use secrecy::ExposeSecret;
use tokio::time::Instant;

use crate::state::AppState;

/// The advisory lock's key: "QLSCHED" in ASCII, so it cannot collide with
/// the migration lock.
const LEADER_LOCK: i64 = 0x0051_4c53_4348_4544;

/// How often a process that is not the leader tries to become it, and the
/// leader checks its connection (and so its lock) is still alive.
const ELECTION_EVERY: Duration = Duration::from_secs(15);

/// One piece of housekeeping.
#[derive(Clone, Copy)]
pub struct Task {
    /// For the logs.
    pub name: &'static str,
    /// How often it runs.
    pub every: Duration,
    /// The work, on a pooled connection; returns how many things it did.
    pub run: fn(&AppState, &mut PgConnection) -> anyhow::Result<usize>,
}

/// A connection holding the leader lock, or trying to.
pub struct Election {
    url: String,
    conn: Option<PgConnection>,
    leading: bool,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

impl Election {
    /// An election on the database at `url` (a connection of its own, not a
    /// pooled one: the lock lives as long as the connection).
    pub fn new(url: &str) -> Self {
        Election { url: url.to_owned(), conn: None, leading: false }
    }

    /// Whether this process leads now: keeps the lock it holds, or takes it
    /// if nobody holds it. Blocking; a lost connection means leadership is
    /// lost (PostgreSQL released the lock with it).
    pub fn try_lead(&mut self) -> bool {
        if self.conn.is_none() {
            self.leading = false;
            self.conn = PgConnection::establish(&self.url).ok();
        }
        let Some(conn) = self.conn.as_mut() else { return false };
        let query = if self.leading {
            // Still connected means still holding it.
            diesel::sql_query("SELECT true AS locked")
        } else {
            diesel::sql_query(format!("SELECT pg_try_advisory_lock({LEADER_LOCK}) AS locked"))
        };
        match query.get_result::<Locked>(conn) {
            Ok(row) => self.leading = row.locked,
            Err(_) => {
                self.conn = None;
                self.leading = false;
            }
        }
        self.leading
    }

    /// Gives the lock up at once (a clean shutdown; dropping does the same).
    /// A process that dies without it loses the lock when PostgreSQL notices
    /// its connection is gone.
    pub fn resign(&mut self) {
        if let (true, Some(conn)) = (self.leading, self.conn.as_mut()) {
            // Best effort: if it fails, closing the connection releases it too.
            let _ = diesel::sql_query("SELECT pg_advisory_unlock($1)").bind::<BigInt, _>(LEADER_LOCK).execute(conn);
        }
        self.leading = false;
    }
}

impl Drop for Election {
    fn drop(&mut self) {
        self.resign();
    }
}

/// Runs `tasks` whenever this process is the leader, until the runtime
/// stops. Each task runs once when leadership is gained, then every
/// `task.every`.
pub async fn run(state: Arc<AppState>, tasks: Vec<Task>) {
    let mut election = Election::new(state.settings.database_url.expose_secret());
    let mut due: Vec<Instant> = vec![Instant::now(); tasks.len()];
    loop {
        let elected = tokio::task::spawn_blocking(move || {
            let leading = election.try_lead();
            (election, leading)
        })
        .await;
        // Only a runtime shutting down cancels it.
        let Ok((back, leading)) = elected else { return };
        election = back;
        if leading {
            for (task, next) in tasks.iter().zip(due.iter_mut()) {
                if Instant::now() < *next {
                    continue;
                }
                *next = Instant::now() + task.every;
                run_task(&state, *task).await;
            }
        } else {
            // A new leader starts with every task due.
            due.iter_mut().for_each(|d| *d = Instant::now());
        }
        tokio::time::sleep(ELECTION_EVERY).await;
    }
}

async fn run_task(state: &Arc<AppState>, task: Task) {
    let st = state.clone();
    let outcome = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        let mut conn = st.background.get()?;
        (task.run)(&st, &mut conn)
    })
    .await;
    match outcome {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(task = task.name, count = n, "scheduled task done"),
        Ok(Err(e)) => tracing::warn!(task = task.name, error = %e, "scheduled task failed"),
        Err(e) => tracing::error!(task = task.name, error = %e, "scheduled task panicked"),
    }
}
