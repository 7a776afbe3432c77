//! Counts the open sync-progress streams per user, to cap them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Open progress streams by user, to cap them.
#[derive(Clone, Default)]
pub struct StreamCounter(Arc<Mutex<HashMap<i64, usize>>>);

/// One open stream; dropping it closes it.
pub struct StreamGuard {
    counter: StreamCounter,
    user_id: i64,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut map = self.counter.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.user_id) {
            *n = n.saturating_sub(1);
        }
    }
}

impl StreamCounter {
    /// Opens one more stream for `user_id`, unless `limit` are open already;
    /// the stream counts until its guard is dropped.
    pub fn open(&self, user_id: i64, limit: usize) -> Option<StreamGuard> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let open = map.entry(user_id).or_default();
        if *open >= limit {
            return None;
        }
        *open += 1;
        Some(StreamGuard { counter: self.clone(), user_id })
    }
}
