//! Runs queued jobs: one loop per registered kind, so a long Steam sync
//! never holds up a mail. Every `serve` runs them unless `RUN_WORKER=false`;
//! `questline worker` runs them without the web server.

use std::sync::Arc;
use std::time::Duration;

use diesel::Connection;

use super::kind::{JobKind, Registry};
use super::model::{self, Job};
use crate::db::blocking;
use crate::state::AppState;

/// How often an idle loop looks for due jobs (queued by another instance,
/// or whose backoff has passed) without being woken.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Starts one loop per kind on the current runtime; they stop with it.
pub fn spawn(state: Arc<AppState>, registry: &Registry) {
    for kind in registry.kinds() {
        actix_web::rt::spawn(run_kind(state.clone(), kind.clone()));
    }
}

/// Claims and runs jobs of one kind until the runtime stops.
async fn run_kind(state: Arc<AppState>, kind: Arc<dyn JobKind>) {
    let mut wake = state.jobs.subscribe();
    let mut outage = crate::db::OutageLog::new("job worker");
    let name = kind.name();
    loop {
        // Marked seen before the claim: a job queued during it rings again.
        wake.borrow_and_update();
        match blocking(&state.pool, move |conn| model::claim(conn, name)).await {
            Ok(Some(job)) => {
                outage.succeeded();
                execute(&state, kind.as_ref(), job).await;
                continue;
            }
            Ok(None) => outage.succeeded(),
            Err(e) => {
                tokio::time::sleep(outage.failed(&e)).await;
                continue;
            }
        }
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

/// Runs one attempt and records its outcome.
async fn execute(state: &AppState, kind: &dyn JobKind, job: Job) {
    let id = job.id;
    tracing::info!(job_id = id, kind = %job.kind, attempt = job.attempts, "job started");
    let outcome = kind.run(state, &job).await;
    let keep_payload = kind.keeps_payload();
    let record = match outcome {
        Ok(done) => {
            tracing::info!(job_id = id, follow_up_at = ?done.follow_up_at, "job finished");
            let (name, user_id) = (kind.name(), job.user_id);
            blocking(&state.pool, move |conn| {
                conn.transaction(|conn| {
                    model::finish(conn, id, keep_payload)?;
                    if let (Some(at), Some(user_id)) = (done.follow_up_at, user_id) {
                        model::enqueue_at(conn, name, user_id, at)?;
                    }
                    Ok(())
                })
            })
            .await
        }
        Err(e) => {
            let retry_in = if e.retry { kind.backoff().delay(job.attempts) } else { None };
            tracing::warn!(job_id = id, error = %e.message, ?retry_in, "job failed");
            blocking(&state.pool, move |conn| model::fail(conn, id, &e.message, retry_in)).await
        }
    };
    if let Err(e) = record {
        tracing::error!(job_id = id, error = %e, "cannot record the job outcome");
    }
}
