//! The `jobs` table: one queue for every kind of background work. Jobs are
//! claimed with `FOR UPDATE SKIP LOCKED` and a lease, so workers in any
//! number of instances share the queue, and a job whose worker died is
//! picked up again once its lease runs out.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Jsonb, Nullable, Text, Timestamptz};

use crate::models::text_enum::text_enum;
use crate::schema::jobs;
use crate::views::json_heap_size;

/// How long a claim holds before another worker may take the job over;
/// the running worker's heartbeat (every [`HEARTBEAT_SECS`]) and progress
/// reports extend it, so only a worker that died loses it.
pub const LEASE_SECS: i32 = 120;
/// How often a running job's worker renews its lease.
pub const HEARTBEAT_SECS: u64 = 20;

text_enum! {
    /// Where a job is in its life.
    JobStatus { Queued => "queued", Running => "running", Done => "done", Failed => "failed" }
}

impl JobStatus {
    /// Whether the job has ended, one way or the other.
    pub fn is_over(self) -> bool {
        matches!(self, JobStatus::Done | JobStatus::Failed)
    }
}

/// A row of `jobs`.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable, get_size2::GetSize)]
#[diesel(table_name = jobs, check_for_backend(diesel::pg::Pg))]
pub struct Job {
    pub id: i64,
    pub kind: String,
    /// The user the job works for, when it is per user (a sync).
    pub user_id: Option<i64>,
    pub status: JobStatus,
    pub attempts: i32,
    pub run_after: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
    pub progress_done: i32,
    pub progress_total: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// What the job's kind needs to run it (an email's address and text).
    #[get_size(size_fn = json_heap_size)]
    pub payload: serde_json::Value,
    /// Drawn anew at each claim: the run holding it is the job's only
    /// writer (see [`fenced`]).
    pub lease_token: Option<i64>,
}

impl Job {
    /// This run's hold on the job.
    pub fn lease(&self) -> Lease {
        Lease { id: self.id, token: self.lease_token.unwrap_or(0) }
    }
}

/// One run's hold on a job: the job and the token its claim drew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    pub token: i64,
}

/// Runs `write` in a transaction that first checks that `lease` still
/// holds the job (running, under this run's token) and keeps the job's
/// row locked until it commits: a relink that supersedes the run, or a
/// worker that took the job over, waits for this write and then makes
/// every later one of this run refused. `None` when the run no longer
/// holds the job; nothing is written then.
pub fn fenced<T>(
    conn: &mut PgConnection,
    lease: Lease,
    write: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
) -> QueryResult<Option<T>> {
    conn.transaction(|conn| {
        let held: Option<i64> = jobs::table
            .find(lease.id)
            .filter(jobs::lease_token.eq(lease.token))
            .filter(jobs::status.eq(JobStatus::Running))
            .select(jobs::id)
            .for_share()
            .first(conn)
            .optional()?;
        match held {
            Some(_) => write(conn).map(Some),
            None => Ok(None),
        }
    })
}

/// Renews the lease of a running job; false when this run no longer holds
/// it (superseded, or taken over after its lease ran out).
pub fn heartbeat(conn: &mut PgConnection, lease: Lease) -> QueryResult<bool> {
    diesel::sql_query(
        "UPDATE jobs SET locked_until = now() + make_interval(secs => $3)
         WHERE id = $1 AND lease_token = $2 AND status = 'running'",
    )
    .bind::<BigInt, _>(lease.id)
    .bind::<BigInt, _>(lease.token)
    .bind::<Integer, _>(LEASE_SECS)
    .execute(conn)
    .map(|n| n > 0)
}

/// Ends the user's running job of `kind` because what it works on changed
/// under it (the Steam link was replaced or removed): its run finds every
/// later write refused, and a new job can be queued at once. Returns how
/// many were superseded.
pub fn supersede(conn: &mut PgConnection, kind: &str, user_id: i64, why: &str) -> QueryResult<usize> {
    // The user's waiting jobs too, until this transaction ends: a claim
    // (which skips locked rows) cannot start one in the moment between
    // this look and the commit, and read the link as it was.
    jobs::table
        .filter(jobs::kind.eq(kind))
        .filter(jobs::user_id.eq(user_id))
        .filter(jobs::status.eq_any([JobStatus::Queued, JobStatus::Running]))
        .select(jobs::id)
        .for_update()
        .load::<i64>(conn)?;
    diesel::sql_query(
        "UPDATE jobs SET status = 'done', finished_at = now(), locked_until = NULL, last_error = $3
         WHERE kind = $1 AND user_id = $2 AND status = 'running'",
    )
    .bind::<Text, _>(kind)
    .bind::<BigInt, _>(user_id)
    .bind::<Text, _>(why)
    .execute(conn)
}

/// Queues a per-user job unless one of that kind is already waiting or
/// running for the user; a waiting one scheduled for later is pulled
/// forward to now. True when a job now waits to start.
pub fn enqueue(conn: &mut PgConnection, kind: &str, user_id: i64) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Status {
        #[diesel(sql_type = Text)]
        status: JobStatus,
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
    Ok(row.status == JobStatus::Queued)
}

/// Queues a per-user job to start at `at`, unless one of that kind is
/// already waiting or running for the user.
pub fn enqueue_at(conn: &mut PgConnection, kind: &str, user_id: i64, at: DateTime<Utc>) -> QueryResult<bool> {
    diesel::sql_query(
        "INSERT INTO jobs (kind, user_id, run_after) VALUES ($1, $2, $3)
         ON CONFLICT (kind, user_id) WHERE status IN ('queued', 'running') DO NOTHING",
    )
    .bind::<Text, _>(kind)
    .bind::<BigInt, _>(user_id)
    .bind::<Timestamptz, _>(at)
    .execute(conn)
    .map(|n| n == 1)
}

/// Queues a job that carries its own data (an email), in the caller's
/// transaction: it runs only if that transaction commits.
pub fn enqueue_payload(conn: &mut PgConnection, kind: &str, payload: &serde_json::Value) -> QueryResult<()> {
    diesel::insert_into(jobs::table).values((jobs::kind.eq(kind), jobs::payload.eq(payload))).execute(conn).map(|_| ())
}

/// Claims the next due job of `kind` (or one whose lease ran out) and
/// counts the attempt.
pub fn claim(conn: &mut PgConnection, kind: &str) -> QueryResult<Option<Job>> {
    diesel::sql_query(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = now(),
             locked_until = now() + make_interval(secs => $1), lease_token = nextval('job_lease_tokens')
         WHERE id = (
             SELECT id FROM jobs
             WHERE kind = $2
               AND ((status = 'queued' AND run_after <= now())
                    OR (status = 'running' AND locked_until < now()))
             ORDER BY run_after
             LIMIT 1
             FOR UPDATE SKIP LOCKED)
         RETURNING *",
    )
    .bind::<Integer, _>(LEASE_SECS)
    .bind::<Text, _>(kind)
    .get_result(conn)
    .optional()
}

/// Records progress and extends the lease, while `lease` holds the job;
/// false when it no longer does.
pub fn progress(conn: &mut PgConnection, lease: Lease, done: i32, total: i32) -> QueryResult<bool> {
    diesel::sql_query(
        "UPDATE jobs SET progress_done = $3, progress_total = $4,
             locked_until = now() + make_interval(secs => $5)
         WHERE id = $1 AND lease_token = $2 AND status = 'running'",
    )
    .bind::<BigInt, _>(lease.id)
    .bind::<BigInt, _>(lease.token)
    .bind::<Integer, _>(done)
    .bind::<Integer, _>(total)
    .bind::<Integer, _>(LEASE_SECS)
    .execute(conn)
    .map(|n| n > 0)
}

/// Marks a job done, if `lease` still holds it. `keep_payload: false`
/// clears what it carried (an email's text, whose links must not outlive
/// their use). False when the run had lost the job.
pub fn finish(conn: &mut PgConnection, lease: Lease, keep_payload: bool) -> QueryResult<bool> {
    diesel::sql_query(
        "UPDATE jobs SET status = 'done', finished_at = now(), locked_until = NULL, last_error = NULL,
             payload = CASE WHEN $3 THEN payload ELSE payload - 'text' - 'html' END
         WHERE id = $1 AND lease_token = $2 AND status = 'running'",
    )
    .bind::<BigInt, _>(lease.id)
    .bind::<BigInt, _>(lease.token)
    .bind::<diesel::sql_types::Bool, _>(keep_payload)
    .execute(conn)
    .map(|n| n > 0)
}

/// Records a failed attempt, if `lease` still holds the job: queued again
/// after `retry_in` seconds, or failed for good when it is `None`.
pub fn fail(conn: &mut PgConnection, lease: Lease, error: &str, retry_in: Option<i64>) -> QueryResult<bool> {
    diesel::sql_query(
        "UPDATE jobs SET last_error = $3, locked_until = NULL,
             status = CASE WHEN $4::bigint IS NULL THEN 'failed' ELSE 'queued' END,
             finished_at = CASE WHEN $4::bigint IS NULL THEN now() END,
             run_after = now() + make_interval(secs => coalesce($4, 0)::double precision)
         WHERE id = $1 AND lease_token = $2 AND status = 'running'",
    )
    .bind::<BigInt, _>(lease.id)
    .bind::<BigInt, _>(lease.token)
    .bind::<Text, _>(error.chars().take(1000).collect::<String>())
    .bind::<Nullable<BigInt>, _>(retry_in)
    .execute(conn)
    .map(|n| n > 0)
}

/// Puts a running job back in the queue, due at once, because its process
/// is stopping: the attempt did not fail, so it is not counted. Only while
/// this run still holds it (a job whose lease ran out may be another
/// worker's now).
pub fn hand_back(conn: &mut PgConnection, lease: Lease) -> QueryResult<bool> {
    let n = diesel::sql_query(
        "UPDATE jobs SET status = 'queued', attempts = greatest(attempts - 1, 0), run_after = now(),
                locked_until = NULL
         WHERE id = $1 AND lease_token = $2 AND status = 'running'",
    )
    .bind::<BigInt, _>(lease.id)
    .bind::<BigInt, _>(lease.token)
    .execute(conn)?;
    Ok(n > 0)
}

/// Puts a failed job back in the queue with its attempts reset (an
/// admin's retry). False when it is not failed, or when a newer job of the
/// same kind already waits for the same user (that one is the retry).
pub fn retry(conn: &mut PgConnection, id: i64) -> QueryResult<bool> {
    let n = diesel::sql_query(
        "UPDATE jobs SET status = 'queued', attempts = 0, run_after = now(), locked_until = NULL,
                last_error = NULL, finished_at = NULL
         WHERE id = $1 AND status = 'failed'
           AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.kind = jobs.kind AND o.user_id = jobs.user_id
                           AND o.status IN ('queued', 'running'))",
    )
    .bind::<BigInt, _>(id)
    .execute(conn)?;
    Ok(n > 0)
}

/// The user's latest job of `kind` that has started or is due; a follow-up
/// scheduled for later does not hide the run that just ended.
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

/// The job with this id.
pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Job> {
    jobs::table.find(id).select(Job::as_select()).first(conn)
}

/// A failed job as the admin page lists it.
#[derive(Debug, QueryableByName)]
pub struct FailedJob {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// Whose job it was, for per-user jobs.
    #[diesel(sql_type = Nullable<Text>)]
    pub username: Option<String>,
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub finished_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Jsonb)]
    pub payload: serde_json::Value,
}

/// The latest 200 failed jobs of `kind`, newest first.
pub fn failed(conn: &mut PgConnection, kind: &str) -> QueryResult<Vec<FailedJob>> {
    diesel::sql_query(
        "SELECT j.id, j.kind, u.username, j.attempts, j.last_error, j.finished_at, j.payload
         FROM jobs j LEFT JOIN users u ON u.id = j.user_id
         WHERE j.status = 'failed' AND j.kind = $1
         ORDER BY j.finished_at DESC NULLS LAST, j.id DESC LIMIT 200",
    )
    .bind::<Text, _>(kind)
    .load(conn)
}

/// How many jobs of one kind are in each live state.
#[derive(Debug, Default, QueryableByName)]
pub struct QueueCounts {
    #[diesel(sql_type = BigInt)]
    pub waiting: i64,
    #[diesel(sql_type = BigInt)]
    pub running: i64,
    #[diesel(sql_type = BigInt)]
    pub failed: i64,
}

/// The counts for `kind`.
pub fn counts(conn: &mut PgConnection, kind: &str) -> QueryResult<QueueCounts> {
    diesel::sql_query(
        "SELECT count(*) FILTER (WHERE status = 'queued') AS waiting,
                count(*) FILTER (WHERE status = 'running') AS running,
                count(*) FILTER (WHERE status = 'failed') AS failed
         FROM jobs WHERE kind = $1",
    )
    .bind::<Text, _>(kind)
    .get_result(conn)
}

/// Queues a job of `kind` for every linked account not synced in the last
/// day and without such a job in that day. Returns how many were queued.
pub fn enqueue_daily(conn: &mut PgConnection, kind: &str) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO jobs (kind, user_id)
         SELECT $1, sa.user_id FROM steam_accounts sa
         WHERE (sa.last_synced_at IS NULL OR sa.last_synced_at < now() - interval '1 day')
           -- Without a key of its own an account syncs with the instance's.
           AND sa.steam_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = $1 AND j.user_id = sa.user_id
                           AND (j.status IN ('queued', 'running') OR j.created_at > now() - interval '1 day'))
         ON CONFLICT (kind, user_id) WHERE status IN ('queued', 'running') DO NOTHING",
    )
    .bind::<Text, _>(kind)
    .execute(conn)
}
