//! What a kind of job is: its name in the queue, how it retries, and the
//! code that runs it. Kinds are registered at start-up; the worker knows
//! nothing of Steam or mail.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::model::Job;
use crate::state::AppState;

/// Exponential backoff: `base_secs` after the first failed attempt,
/// doubling each time up to `max_secs`, and at most `max_attempts` tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base_secs: i64,
    pub max_secs: i64,
    pub max_attempts: i32,
}

impl Backoff {
    /// Seconds to wait after the `attempts`-th failed attempt, or `None`
    /// once the job has had all its tries.
    pub fn delay(&self, attempts: i32) -> Option<i64> {
        if attempts >= self.max_attempts {
            return None;
        }
        let doubled = self.base_secs.saturating_mul(1_i64 << (attempts - 1).clamp(0, 20));
        Some(doubled.min(self.max_secs))
    }
}

/// A job ran to its end.
#[derive(Debug, Default)]
pub struct Done {
    /// Run the same job again for the same user at this time (parts of the
    /// work failed and wait for their own backoff).
    pub follow_up_at: Option<DateTime<Utc>>,
}

/// A job failed; `retry: false` when trying again cannot help.
#[derive(Debug)]
pub struct JobError {
    pub message: String,
    pub retry: bool,
    /// Not before this time, whatever the backoff says (Steam's
    /// `Retry-After`).
    pub not_before: Option<DateTime<Utc>>,
    /// The run lost the job (see [`JobError::lost`]).
    pub lost: bool,
}

impl JobError {
    /// A failure worth another attempt (a timeout, a 5xx).
    pub fn transient(message: impl Into<String>) -> Self {
        JobError { message: message.into(), retry: true, not_before: None, lost: false }
    }

    /// A failure that another attempt would repeat.
    pub fn fatal(message: impl Into<String>) -> Self {
        JobError { message: message.into(), retry: false, not_before: None, lost: false }
    }

    /// The run lost the job (a relink superseded it, or its lease was
    /// taken over): nothing more is recorded, by this run, of it.
    pub fn lost() -> Self {
        JobError { lost: true, ..JobError::fatal("this run no longer holds the job") }
    }

    /// Whether this is [`JobError::lost`].
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// Seconds until another attempt, from the kind's backoff after
    /// `attempts`, and no sooner than [`JobError::not_before`]; `None` for
    /// no further attempt.
    pub fn retry_in(&self, backoff: Backoff, attempts: i32) -> Option<i64> {
        if !self.retry {
            return None;
        }
        match self.not_before {
            // A wait Steam asked for is retried past the kind's tries (it
            // is no failure of ours), but not without end: a key Steam
            // keeps limiting stops after four times the tries.
            Some(at) if attempts < backoff.max_attempts.saturating_mul(4) => {
                Some((at - Utc::now()).num_seconds().max(1))
            }
            Some(_) => None,
            None => backoff.delay(attempts),
        }
    }
}

impl From<anyhow::Error> for JobError {
    fn from(e: anyhow::Error) -> Self {
        JobError::transient(format!("internal error: {e}"))
    }
}

/// The future a job's run returns.
pub type JobFuture<'a> = Pin<Box<dyn Future<Output = Result<Done, JobError>> + Send + 'a>>;

/// One kind of background work.
pub trait JobKind: Send + Sync + 'static {
    /// The `kind` column's value.
    fn name(&self) -> &'static str;

    /// How failed attempts are retried.
    fn backoff(&self) -> Backoff;

    /// Whether the payload is kept once the job is done (an email's text is
    /// not: its links must not outlive their use).
    fn keeps_payload(&self) -> bool {
        true
    }

    /// Runs one attempt.
    fn run<'a>(&'a self, state: &'a AppState, job: &'a Job) -> JobFuture<'a>;
}

/// The kinds this instance runs, by name.
#[derive(Clone, Default)]
pub struct Registry(BTreeMap<&'static str, Arc<dyn JobKind>>);

impl Registry {
    /// Adds a kind; a second kind with the same name replaces the first.
    pub fn register(mut self, kind: impl JobKind) -> Self {
        self.0.insert(kind.name(), Arc::new(kind));
        self
    }

    /// Every registered kind.
    pub fn kinds(&self) -> impl Iterator<Item = &Arc<dyn JobKind>> {
        self.0.values()
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;

    #[test]
    fn backoff_doubles_up_to_its_ceiling_and_stops_after_the_last_attempt() {
        let b = Backoff { base_secs: 30, max_secs: 3600, max_attempts: 10 };
        assert_eq!(b.delay(1), Some(30));
        assert_eq!(b.delay(2), Some(60));
        assert_eq!(b.delay(3), Some(120));
        assert_eq!(b.delay(8), Some(3600));
        assert_eq!(b.delay(9), Some(3600));
        assert_eq!(b.delay(10), None);
    }
}
