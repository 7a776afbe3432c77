//! Runs queued jobs: one loop per registered kind, so a long Steam sync
//! never holds up a mail. Every `serve` runs them unless `RUN_WORKER=false`;
//! `questline worker` runs them without the web server.

use std::sync::Arc;
use std::time::Duration;

use diesel::Connection;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::kind::{JobError, JobKind, Registry};
use super::model::{self, Job};
use crate::db::blocking;
use crate::state::AppState;

/// How often an idle loop looks for due jobs (queued by another instance,
/// or whose backoff has passed) without being woken.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Where the job loops of a process are in its life. Ordered: each phase
/// follows the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Running,
    /// Claim nothing more; let the jobs running finish.
    Draining,
    /// The grace is over: jobs still running go back to the queue.
    HandBack,
}

/// The job loops of one process, to stop them the way a deploy needs.
pub struct Workers {
    phase: watch::Sender<Phase>,
    loops: Vec<JoinHandle<bool>>,
}

/// Starts one loop per kind on the current runtime. They run until
/// [`Workers::shut_down`] or until the runtime stops.
pub fn spawn(state: Arc<AppState>, registry: &Registry) -> Workers {
    let (phase, _) = watch::channel(Phase::Running);
    let loops = registry
        .kinds()
        .map(|kind| actix_web::rt::spawn(run_kind(state.clone(), kind.clone(), phase.subscribe())))
        .collect();
    Workers { phase, loops }
}

impl Workers {
    /// Stops claiming jobs and gives those running `grace` to finish. Any
    /// still running then goes back to the queue, due at once, so another
    /// worker starts it within its next look (two seconds) rather than
    /// when the five-minute lease runs out. Returns how many went back.
    pub async fn shut_down(self, grace: Duration) -> usize {
        self.phase.send_replace(Phase::Draining);
        let deadline = tokio::time::Instant::now() + grace;
        let mut handed_back = 0;
        let mut still_running = Vec::new();
        for mut job_loop in self.loops {
            match tokio::time::timeout_at(deadline, &mut job_loop).await {
                Ok(ended) => handed_back += usize::from(ended.unwrap_or(false)),
                Err(_) => still_running.push(job_loop),
            }
        }
        if !still_running.is_empty() {
            self.phase.send_replace(Phase::HandBack);
            for job_loop in still_running {
                handed_back += usize::from(job_loop.await.unwrap_or(false));
            }
        }
        handed_back
    }
}

/// Resolves once the loops are told to reach `phase`; never when nobody
/// can tell them any more (the [`Workers`] handle was dropped).
async fn reached(phase: &mut watch::Receiver<Phase>, at: Phase) {
    if phase.wait_for(|p| *p >= at).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Claims and runs jobs of one kind until told to stop; true when it
/// handed a job back unfinished.
async fn run_kind(state: Arc<AppState>, kind: Arc<dyn JobKind>, mut phase: watch::Receiver<Phase>) -> bool {
    let mut wake = state.jobs.subscribe();
    let mut outage = crate::db::OutageLog::new("job worker");
    let name = kind.name();
    loop {
        if *phase.borrow() != Phase::Running {
            return false;
        }
        // Marked seen before the claim: a job queued during it rings again.
        wake.borrow_and_update();
        match blocking(&state.background, move |conn| model::claim(conn, name)).await {
            Ok(Some(job)) => {
                outage.succeeded();
                if !execute(&state, kind.as_ref(), job, &mut phase).await {
                    return true;
                }
                continue;
            }
            Ok(None) => outage.succeeded(),
            Err(e) => {
                tokio::select! {
                    _ = tokio::time::sleep(outage.failed(&e)) => {}
                    _ = reached(&mut phase, Phase::Draining) => {}
                }
                continue;
            }
        }
        tokio::select! {
            _ = wake.changed() => {}
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = reached(&mut phase, Phase::Draining) => {}
        }
    }
}

/// Runs one attempt and records its outcome; false when the process is
/// stopping and the job went back to the queue unfinished. A heartbeat
/// renews the lease while the attempt runs, so a slow attempt is never
/// taken over by another worker; if the run loses the job all the same
/// (a relink superseded it), it stops there and records nothing.
async fn execute(state: &AppState, kind: &dyn JobKind, job: Job, phase: &mut watch::Receiver<Phase>) -> bool {
    let (id, lease) = (job.id, job.lease());
    tracing::info!(job_id = id, kind = %job.kind, attempt = job.attempts, "job started");
    let outcome = tokio::select! {
        outcome = kind.run(state, &job) => outcome,
        () = lose(state, lease) => Err(JobError::lost()),
        _ = reached(phase, Phase::HandBack) => {
            // What the attempt stored stays: a sync picks up from there.
            match blocking(&state.background, move |conn| model::hand_back(conn, lease)).await {
                Ok(_) => tracing::warn!(job_id = id, kind = %job.kind, "stopping: the job goes back to the queue unfinished"),
                Err(e) => tracing::error!(job_id = id, error = %e, "stopping: cannot hand the job back; its lease will"),
            }
            return false;
        }
    };
    let keep_payload = kind.keeps_payload();
    let record = match outcome {
        Err(e) if e.is_lost() => {
            tracing::info!(job_id = id, kind = %job.kind, "the run lost the job (superseded or taken over); it stopped");
            Ok(true)
        }
        Ok(done) => {
            tracing::info!(job_id = id, follow_up_at = ?done.follow_up_at, "job finished");
            let (name, user_id) = (kind.name(), job.user_id);
            blocking(&state.background, move |conn| {
                conn.transaction(|conn| {
                    if !model::finish(conn, lease, keep_payload)? {
                        return Ok(false);
                    }
                    if let (Some(at), Some(user_id)) = (done.follow_up_at, user_id) {
                        model::enqueue_at(conn, name, user_id, at)?;
                    }
                    Ok(true)
                })
            })
            .await
        }
        Err(e) => {
            let retry_in = e.retry_in(kind.backoff(), job.attempts);
            tracing::warn!(job_id = id, error = %e.message, ?retry_in, "job failed");
            blocking(&state.background, move |conn| model::fail(conn, lease, &e.message, retry_in)).await
        }
    };
    match record {
        Ok(true) => {}
        Ok(false) => tracing::info!(job_id = id, "the job's outcome was not recorded: the run no longer held it"),
        Err(e) => tracing::error!(job_id = id, error = %e, "cannot record the job outcome"),
    }
    true
}

/// Renews `lease` every [`model::HEARTBEAT_SECS`]; resolves when the run no
/// longer holds the job. A renewal that fails for an outage is tried again
/// at the next beat (the lease outlasts several).
async fn lose(state: &AppState, lease: model::Lease) {
    let every = Duration::from_secs(model::HEARTBEAT_SECS);
    loop {
        tokio::time::sleep(every).await;
        match blocking(&state.background, move |conn| model::heartbeat(conn, lease)).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => tracing::warn!(job_id = lease.id, error = %e, "cannot renew the job's lease"),
        }
    }
}
