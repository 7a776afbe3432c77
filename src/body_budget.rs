//! The bytes of request bodies a process holds in memory at once, shared
//! by every request (`BODY_BUFFER_MB`); the middleware that buffers form
//! bodies takes its room here.

/// How long a body waits for room in the buffer budget before the request
/// gets a 503.
const BUDGET_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The bytes of request bodies this process holds in memory at once,
/// across every request (`BODY_BUFFER_MB`): a crowd of half-sent uploads
/// waits for room, or is refused, instead of growing the heap.
#[derive(Clone)]
pub struct BodyBudget {
    room: std::sync::Arc<tokio::sync::Semaphore>,
    kib: usize,
}

impl BodyBudget {
    /// A budget of `bytes` (counted in KiB).
    pub fn new(bytes: usize) -> Self {
        let kib = (bytes / 1024).max(1);
        BodyBudget { room: std::sync::Arc::new(tokio::sync::Semaphore::new(kib)), kib }
    }

    /// Bytes of bodies held now.
    pub fn held(&self) -> usize {
        (self.kib - self.room.available_permits()) * 1024
    }

    /// Room for `bytes` more (whole KiB), held until the returned permit
    /// drops; `Err` when none came free within a few seconds.
    pub async fn reserve(&self, bytes: usize) -> Result<tokio::sync::OwnedSemaphorePermit, Full> {
        let kib = u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
        match tokio::time::timeout(BUDGET_WAIT, self.room.clone().acquire_many_owned(kib)).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Full),
        }
    }
}

/// The budget had no room in time.
#[derive(Debug)]
pub struct Full;
