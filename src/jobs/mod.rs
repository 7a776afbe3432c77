//! A job queue in PostgreSQL. Jobs are claimed with `FOR UPDATE SKIP LOCKED`
//! and a lease, so workers in any number of instances share the queue, and a
//! job whose worker died is picked up again once its lease runs out.

pub mod signal;
pub mod worker;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};

use crate::schema::jobs;

/// Syncs one user's Steam library.
pub const STEAM_SYNC: &str = "steam_sync";
/// A lease long enough for a large library; progress updates renew it.
pub const LEASE_SECS: i32 = 300;
/// Attempts before a job is given up.
pub const MAX_ATTEMPTS: i32 = 5;

/// A row of `jobs`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = jobs, check_for_backend(diesel::pg::Pg))]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub user_id: Option<i64>,
    pub status: String,
    pub attempts: i32,
    pub run_after: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
    pub progress_done: i32,
    pub progress_total: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Queues `kind` for `user_id` to run now; true when it will start (a new
/// job, or one that was waiting for later and now runs now), false when one
/// is already running.
pub fn enqueue(conn: &mut PgConnection, kind: &str, user_id: i64) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Status {
        #[diesel(sql_type = Text)]
        status: String,
    }
    let row: Status = diesel::sql_query(
        "INSERT INTO jobs (kind, user_id) VALUES ($1, $2)
         ON CONFLICT (kind, user_id) WHERE status IN ('queued', 'running')
         DO UPDATE SET run_after = LEAST(jobs.run_after, now())
         RETURNING status",
    )
    .bind::<Text, _>(kind)
    .bind::<BigInt, _>(user_id)
    .get_result(conn)?;
    Ok(row.status == "queued")
}

/// Queues `kind` for `user_id` to run no earlier than `at`, unless one is
/// already waiting or running (which will see the same work).
pub fn enqueue_at(conn: &mut PgConnection, kind: &str, user_id: i64, at: DateTime<Utc>) -> QueryResult<bool> {
    diesel::sql_query(
        "INSERT INTO jobs (kind, user_id, run_after) VALUES ($1, $2, $3)
         ON CONFLICT (kind, user_id) WHERE status IN ('queued', 'running') DO NOTHING",
    )
    .bind::<Text, _>(kind)
    .bind::<BigInt, _>(user_id)
    .bind::<diesel::sql_types::Timestamptz, _>(at)
    .execute(conn)
    .map(|n| n == 1)
}

/// Claims the oldest due job: queued and due, or running with a lapsed lease.
pub fn claim(conn: &mut PgConnection) -> QueryResult<Option<Job>> {
    diesel::sql_query(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = now(),
             locked_until = now() + make_interval(secs => $1)
         WHERE id = (
             SELECT id FROM jobs
             WHERE (status = 'queued' AND run_after <= now())
                OR (status = 'running' AND locked_until < now())
             ORDER BY run_after
             LIMIT 1
             FOR UPDATE SKIP LOCKED)
         RETURNING *",
    )
    .bind::<Integer, _>(LEASE_SECS)
    .get_result(conn)
    .optional()
}

/// Records progress and renews the lease.
pub fn progress(conn: &mut PgConnection, id: i64, done: i32, total: i32) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE jobs SET progress_done = $2, progress_total = $3,
             locked_until = now() + make_interval(secs => $4)
         WHERE id = $1",
    )
    .bind::<BigInt, _>(id)
    .bind::<Integer, _>(done)
    .bind::<Integer, _>(total)
    .bind::<Integer, _>(LEASE_SECS)
    .execute(conn)
    .map(|_| ())
}

pub fn finish(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
    diesel::update(jobs::table.find(id))
        .set((
            jobs::status.eq("done"),
            jobs::finished_at.eq(Utc::now()),
            jobs::locked_until.eq(None::<DateTime<Utc>>),
            jobs::last_error.eq(None::<String>),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Fails a job: retried later with backoff when `retry` and attempts remain,
/// else marked failed.
pub fn fail(conn: &mut PgConnection, job: &Job, error: &str, retry: bool) -> QueryResult<()> {
    let give_up = !retry || job.attempts >= MAX_ATTEMPTS;
    let delay = 60_i32 << job.attempts.clamp(0, 6);
    diesel::sql_query(
        "UPDATE jobs SET last_error = $2, status = $3, locked_until = NULL,
             finished_at = CASE WHEN $3 = 'failed' THEN now() END,
             run_after = now() + make_interval(secs => $4)
         WHERE id = $1",
    )
    .bind::<BigInt, _>(job.id)
    .bind::<Text, _>(error.chars().take(1000).collect::<String>())
    .bind::<Text, _>(if give_up { "failed" } else { "queued" })
    .bind::<Integer, _>(delay)
    .execute(conn)
    .map(|_| ())
}

/// The newest job of `kind` for a user that has started or is due, for the
/// progress display (a follow-up queued for later is not "the sync").
pub fn latest(conn: &mut PgConnection, kind: &str, user_id: i64) -> QueryResult<Option<Job>> {
    jobs::table
        .filter(jobs::kind.eq(kind))
        .filter(jobs::user_id.eq(user_id))
        .filter(jobs::started_at.is_not_null().or(jobs::run_after.le(diesel::dsl::now)))
        .order(jobs::created_at.desc())
        .select(Job::as_select())
        .first(conn)
        .optional()
}

/// Queues a sync for every fully linked account not synced in the last day
/// (or never, like accounts brought over from the legacy app), unless one
/// was queued in the last day. Cheap enough to run on every worker's idle tick:
/// the unique index makes concurrent runs harmless.
pub fn enqueue_daily_resyncs(conn: &mut PgConnection) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO jobs (kind, user_id)
         SELECT $1, sa.user_id FROM steam_accounts sa
         WHERE (sa.last_synced_at IS NULL OR sa.last_synced_at < now() - interval '1 day')
           AND sa.steam_id IS NOT NULL AND sa.api_key_enc IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = $1 AND j.user_id = sa.user_id
                           AND (j.status IN ('queued', 'running') OR j.created_at > now() - interval '1 day'))
         ON CONFLICT (kind, user_id) WHERE status IN ('queued', 'running') DO NOTHING",
    )
    .bind::<Text, _>(STEAM_SYNC)
    .execute(conn)
}
