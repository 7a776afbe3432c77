//! Wakes this instance's job worker at once when a job is queued, instead
//! of at its next poll.

use std::sync::Arc;

use tokio::sync::Notify;

/// Wakes this instance's worker when a job is queued here.
#[derive(Clone, Default)]
pub struct JobSignal(pub Arc<Notify>);

impl JobSignal {
    /// Wakes the worker.
    pub fn notify(&self) {
        self.0.notify_one();
    }
}
