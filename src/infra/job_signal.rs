//! Wakes this instance's job workers at once when a job is queued, instead
//! of at their next poll.

use std::sync::Arc;

use tokio::sync::watch;

/// A doorbell every worker loop listens to. A ring is remembered until each
/// loop has seen it, so one that was busy when it rang still looks again.
#[derive(Clone)]
pub struct JobSignal(Arc<watch::Sender<u64>>);

impl Default for JobSignal {
    fn default() -> Self {
        JobSignal(Arc::new(watch::Sender::new(0)))
    }
}

impl JobSignal {
    /// Wakes every worker loop of this instance.
    pub fn notify(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A listener for one worker loop.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}
