//! PostgreSQL pool, embedded migrations and the bridge that keeps blocking
//! diesel calls off the async workers.

pub mod bulk;

use std::time::Duration;

use anyhow::Context;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel::RunQueryDsl;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use secrecy::ExposeSecret;

use crate::error::AppError;
use crate::settings::Settings;

/// A pool of PostgreSQL connections.
pub type PgPool = Pool<CheckedManager>;
/// One connection checked out of [`PgPool`].
pub type PgPooled = PooledConnection<CheckedManager>;

/// When (Unix milliseconds) a connection to PostgreSQL was last found lost.
/// Process-wide on purpose: after a PostgreSQL restart every idle pooled
/// connection is dead, whichever pool holds it.
static LAST_LOST_CONNECTION_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// How long after a lost connection every checkout is checked first.
const CHECK_AFTER_LOSS_MS: i64 = 30_000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Notes that a connection to PostgreSQL was lost (the server stopped or
/// restarted), so the pool checks connections before handing them out for
/// a while and drops the dead ones instead of failing a request with each.
pub fn note_lost_connection() {
    LAST_LOST_CONNECTION_MS.store(now_ms(), std::sync::atomic::Ordering::Relaxed);
}

/// diesel's connection manager, checking a connection on checkout only in
/// the half minute after one was found lost: normally a page pays for no
/// `SELECT 1`, and after an outage no request meets a dead connection.
#[derive(Debug)]
pub struct CheckedManager {
    inner: ConnectionManager<PgConnection>,
    /// The longest one statement may run on these connections, when they
    /// serve requests (see [`build_request_pool`]).
    statement_timeout: Option<Duration>,
}

impl diesel::r2d2::ManageConnection for CheckedManager {
    type Connection = PgConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PgConnection, Self::Error> {
        use diesel::connection::SimpleConnection;
        let mut conn = self.inner.connect()?;
        // PostgreSQL compiles plans that its estimate calls costly (a heavy
        // library's join passes the threshold) to machine code first: for
        // the app's queries, which run in milliseconds, that compilation
        // cost a second or more each time (measured by
        // ./scripts/bench points). Off for the app's connections.
        let mut setup = "SET jit = off;".to_owned();
        // A request never holds a connection (and a worker thread) past its
        // budget, whatever it asked for: PostgreSQL cancels the statement
        // and the visitor gets a "took too long" page.
        if let Some(limit) = self.statement_timeout {
            setup.push_str(&format!(" SET statement_timeout = {};", limit.as_millis()));
        }
        conn.batch_execute(&setup).map_err(diesel::r2d2::Error::QueryError)?;
        Ok(conn)
    }

    fn is_valid(&self, conn: &mut PgConnection) -> Result<(), Self::Error> {
        let since = now_ms() - LAST_LOST_CONNECTION_MS.load(std::sync::atomic::Ordering::Relaxed);
        if since < CHECK_AFTER_LOSS_MS {
            self.inner.is_valid(conn)
        } else {
            Ok(())
        }
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        self.inner.has_broken(conn)
    }
}

/// The migrations under `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Any fixed number works; it only has to be the same for every instance so
/// two servers starting together do not migrate at once.
const MIGRATION_LOCK_KEY: i64 = 0x5155_4553_544c_494e; // "QUESTLIN"

/// Builds the pool without connecting, so a server can start (and report
/// "not ready") while PostgreSQL is still coming up. Its statements have
/// no time limit: the commands (an import, a backup) and the background
/// workers use it.
pub fn build_pool(settings: &Settings) -> PgPool {
    // A request waits at most a second for a connection: with PostgreSQL
    // down it gets the 503 page at once, not after a stall.
    pool_for(settings.database_url.expose_secret(), settings.database_pool_size, Duration::from_secs(1), None, None)
}

/// The pool requests use: like [`build_pool`], but each statement is
/// cancelled past `REQUEST_STATEMENT_TIMEOUT_MS`.
pub fn build_request_pool(settings: &Settings) -> PgPool {
    let url = settings.database_url.expose_secret();
    let limit = Some(settings.request_statement_timeout);
    pool_for(url, settings.database_pool_size, Duration::from_secs(1), None, limit)
}

/// The background workers' pool: no statement limit (a sync of a large
/// library is no visitor's wait), opened only as jobs need connections.
pub fn build_background_pool(settings: &Settings) -> PgPool {
    let url = settings.database_url.expose_secret();
    pool_for(url, settings.database_pool_size, Duration::from_secs(1), Some(0), None)
}

/// The replica's pool, when `DATABASE_REPLICA_URL` is set. A read waits
/// only a quarter second for one of its connections: the primary can
/// answer instead. Only pages read there, so its statements have the
/// requests' time limit.
pub fn build_replica_pool(settings: &Settings) -> Option<PgPool> {
    let url = settings.database_replica_url.as_ref()?;
    let limit = Some(settings.request_statement_timeout);
    let pool = pool_for(url.expose_secret(), settings.database_pool_size, Duration::from_millis(250), Some(0), limit);
    // Opened as pages need them, not all at start: a worker process,
    // which reads no pages, then holds none on the replica.
    Some(pool)
}

fn pool_for(url: &str, size: u32, wait: Duration, min_idle: Option<u32>, limit: Option<Duration>) -> PgPool {
    let manager = CheckedManager { inner: ConnectionManager::<PgConnection>::new(url), statement_timeout: limit };
    Pool::builder()
        .max_size(size)
        .min_idle(min_idle)
        .connection_timeout(wait)
        // Checked on checkout only right after a lost connection (see
        // `CheckedManager`): a `SELECT 1` before every checkout doubled the
        // statements of every page.
        .test_on_check_out(true)
        .build_unchecked(manager)
}

/// Names of the migrations this binary has that the database lacks. Reads
/// only: diesel's own check would create its bookkeeping table, and a dry
/// run must not write even that.
pub fn pending_migrations(conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    use diesel::migration::{Migration as _, MigrationSource};
    use diesel::sql_types::{Bool, Text};
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = Bool)]
        found: bool,
    }
    #[derive(diesel::QueryableByName)]
    struct Version {
        #[diesel(sql_type = Text)]
        version: String,
    }
    let all = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("reading the embedded migrations: {e}"))?;
    let bookkept = diesel::sql_query("SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS found")
        .get_result::<Exists>(conn)?
        .found;
    let applied: std::collections::HashSet<String> = if bookkept {
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<Version>(conn)?
            .into_iter()
            .map(|v| v.version)
            .collect()
    } else {
        Default::default()
    };
    Ok(all
        .iter()
        .filter(|m| !applied.contains(&m.name().version().to_string()))
        .map(|m| m.name().to_string())
        .collect())
}

/// Applies pending migrations under an advisory lock and returns their
/// names; then runs `after` under the same lock (what the database cannot
/// compute itself, so two nodes starting at once do not race for it).
/// `crate::models::migrate` is the one caller, with the username keys.
pub fn run_migrations(
    conn: &mut PgConnection,
    after: impl FnOnce(&mut PgConnection) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<String>> {
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        .execute(conn)
        .context("taking the migration lock")?;
    let result = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|applied| applied.iter().map(|m| m.to_string()).collect::<Vec<String>>())
        .map_err(|e| anyhow::anyhow!("applying migrations: {e}"))
        .and_then(|applied| after(conn).map(|()| applied));
    // Unlock even when a migration failed, or a retry in this session would wait forever.
    let unlock = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
        .execute(conn)
        .context("releasing the migration lock");
    let applied = result?;
    unlock?;
    Ok(applied)
}

/// Runs `f` with a pooled connection on the blocking thread pool: the one
/// bridge from async code to diesel.
///
/// Diesel is synchronous; calling it on an async worker would stall every
/// other request that worker serves.
pub async fn run<T, F>(pool: &PgPool, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut PgConnection) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    // The request's span (and its request id) follows the work onto the
    // blocking thread, so what is logged there says which request it served.
    let span = tracing::Span::current();
    actix_web::web::block(move || {
        let _entered = span.enter();
        let mut conn = pool.get().map_err(|e| {
            note_lost_connection();
            AppError::database_unavailable(e)
        })?;
        let out = f(&mut conn);
        if matches!(out, Err(AppError::Unavailable(_))) {
            note_lost_connection();
        }
        out
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("blocking pool: {e}")))?
}

/// [`run`] for background workers, with diesel's and anyhow's errors
/// instead of [`AppError`]: the same blocking pool, span and outage notes.
pub async fn blocking<T: Send + 'static>(
    pool: &PgPool,
    f: impl FnOnce(&mut PgConnection) -> diesel::QueryResult<T> + Send + 'static,
) -> anyhow::Result<T> {
    run(pool, move |conn| f(conn).map_err(AppError::from)).await.map_err(anyhow::Error::from)
}

/// What a per-user lock (see [`lock_for_user`]) guards: one kind of
/// capped list of one user.
#[derive(Debug, Clone, Copy)]
pub enum UserLock {
    /// The goals an account keeps (`GOALS_PER_ACCOUNT`).
    Goals = 1,
    /// The pins on the dashboard (`pins::MAX_PINS`).
    Pins = 2,
}

/// Waits for, then holds until the transaction ends, the lock on `what` of
/// user `user_id`: writers that count a capped list before adding to it
/// take it first, so parallel requests cannot all pass the same count.
/// An advisory lock, because a cap counts rows that may not exist yet (a
/// row lock on the first pin locks nothing when there is none).
pub fn lock_for_user(conn: &mut PgConnection, what: UserLock, user_id: i64) -> diesel::QueryResult<()> {
    // The two-key form has a key space of its own, apart from the
    // migration lock's single key; ids past 2^31 share a key with another
    // user's, which costs a wait, never a wrong count.
    diesel::sql_query("SELECT pg_advisory_xact_lock($1, ($2 % 2147483647)::int4)")
        .bind::<diesel::sql_types::Integer, _>(what as i32)
        .bind::<diesel::sql_types::BigInt, _>(user_id)
        .execute(conn)
        .map(|_| ())
}

/// Refreshes the planner's statistics of these tables: after a bulk load
/// they describe the empty tables, and the planner then hashes a whole
/// user's unlocks to show one game.
pub fn analyze(conn: &mut PgConnection, tables: &[&str]) -> diesel::QueryResult<()> {
    for table in tables {
        // Names come from the caller's constant list, never from input.
        debug_assert!(table.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        diesel::sql_query(format!("ANALYZE {table}")).execute(conn)?;
    }
    Ok(())
}

/// One round trip to PostgreSQL: the probes and the admin dashboard time it.
pub fn ping(conn: &mut PgConnection) -> diesel::QueryResult<()> {
    diesel::sql_query("SELECT 1").execute(conn).map(|_| ())
}

/// A `LIKE`/`ILIKE` pattern matching `search` anywhere, with the wildcards a
/// user typed (`%`, `_`, `\\`) taken literally.
pub fn contains_pattern(search: &str) -> String {
    format!("%{}%", search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}

/// What a background loop (a worker) knows of a PostgreSQL outage: it logs
/// once when the outage begins and once when it ends, never once per
/// attempt, and backs off between attempts.
pub struct OutageLog {
    what: &'static str,
    since: Option<std::time::Instant>,
    failures: u32,
}

/// The longest pause between a worker's attempts during an outage, so it
/// resumes within this long of PostgreSQL answering again.
const OUTAGE_MAX_BACKOFF: Duration = Duration::from_secs(2);

impl OutageLog {
    /// A log for the loop named `what` ("job worker", "email worker").
    pub fn new(what: &'static str) -> Self {
        OutageLog { what, since: None, failures: 0 }
    }

    /// Records a failed attempt; returns how long to wait before the next.
    pub fn failed(&mut self, error: &dyn std::fmt::Display) -> Duration {
        if self.since.is_none() {
            self.since = Some(std::time::Instant::now());
            tracing::warn!(worker = self.what, error = %error, "PostgreSQL is unavailable; retrying with backoff");
        }
        self.failures = self.failures.saturating_add(1);
        (Duration::from_millis(250) * 2u32.saturating_pow(self.failures.min(8) - 1)).min(OUTAGE_MAX_BACKOFF)
    }

    /// Records a successful attempt, ending any outage.
    pub fn succeeded(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::warn!(
                worker = self.what,
                outage_seconds = since.elapsed().as_secs_f64(),
                "PostgreSQL answers again"
            );
        }
        self.failures = 0;
    }
}
