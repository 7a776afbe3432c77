//! Runs queued jobs. Every `serve` runs one; `questline worker` runs one
//! without the web server.

use std::sync::Arc;
use std::time::Duration;

use diesel::Connection;

use super::{Job, STEAM_SYNC};
use crate::db::blocking;
use crate::state::AppState;

const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Files younger than this may belong to an upload still in flight.
const STRAY_FILE_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

/// How often each worker looks for accounts due their daily resync.
const RESYNC_CHECK_EVERY: Duration = Duration::from_secs(600);

/// Claims and runs jobs until the runtime stops.
pub async fn run(ctx: Arc<AppState>) {
    let signal = ctx.jobs.clone();
    let mut next_resync_check = tokio::time::Instant::now();
    let mut outage = crate::db::OutageLog::new("job worker");
    loop {
        if tokio::time::Instant::now() >= next_resync_check {
            next_resync_check += RESYNC_CHECK_EVERY;
            match blocking(&ctx.pool, super::enqueue_daily_resyncs).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(queued = n, "daily resyncs queued"),
                Err(e) => tracing::warn!(error = %e, "cannot queue daily resyncs"),
            }
            let days = ctx.settings.audit_retention_days;
            match blocking(&ctx.pool, move |conn| crate::audit::purge_older_than(conn, days)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, days, "old audit entries deleted"),
                Err(e) => tracing::warn!(error = %e, "cannot purge the audit log"),
            }
            // Accounts deleted by cascade leave image files nobody uses.
            let storage = ctx.storage.clone();
            match blocking(&ctx.pool, move |conn| Ok(crate::images::model::sweep_orphans(conn, storage.as_ref(), None)))
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "unused image files removed"),
                Err(e) => tracing::warn!(error = %e, "cannot sweep unused images"),
            }
            let storage = ctx.storage.clone();
            let swept = blocking(&ctx.pool, move |conn| {
                Ok(crate::images::model::sweep_stray_files(conn, storage.as_ref(), STRAY_FILE_GRACE))
            })
            .await;
            match swept {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(removed = n, "stray image files removed"),
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot sweep stray image files"),
                Err(e) => tracing::warn!(error = %e, "cannot sweep stray image files"),
            }
        }
        match blocking(&ctx.pool, super::claim).await {
            Ok(Some(job)) => {
                outage.succeeded();
                execute(&ctx, job).await;
                continue;
            }
            Ok(None) => outage.succeeded(),
            Err(e) => {
                tokio::time::sleep(outage.failed(&e)).await;
                continue;
            }
        }
        tokio::select! {
            _ = signal.0.notified() => {}
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

async fn execute(ctx: &AppState, job: Job) {
    let id = job.id;
    tracing::info!(job_id = id, kind = %job.kind, attempt = job.attempts, "job started");
    let outcome = match job.kind.as_str() {
        STEAM_SYNC => crate::steam::sync::run(ctx, &job).await,
        other => Err(crate::steam::sync::SyncError::fatal(format!("unknown job kind {other}"))),
    };
    let record = match outcome {
        Ok(outcome) => {
            tracing::info!(job_id = id, retry_at = ?outcome.retry_at, "job finished");
            let (kind, user_id) = (job.kind.clone(), job.user_id);
            blocking(&ctx.pool, move |conn| {
                conn.transaction(|conn| {
                    super::finish(conn, id)?;
                    // Games that failed are tried again once their backoff
                    // has passed, without waiting for the daily resync.
                    if let (Some(at), Some(user_id)) = (outcome.retry_at, user_id) {
                        super::enqueue_at(conn, &kind, user_id, at)?;
                    }
                    Ok(())
                })
            })
            .await
        }
        Err(e) => {
            tracing::warn!(job_id = id, error = %e.message, retry = e.retry, "job failed");
            blocking(&ctx.pool, move |conn| super::fail(conn, &job, &e.message, e.retry)).await
        }
    };
    if let Err(e) = record {
        tracing::error!(job_id = id, error = %e, "cannot record the job outcome");
    }
}
