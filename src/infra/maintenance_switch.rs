//! The maintenance switch: it lives in Redis so every instance agrees; each
//! instance keeps a local copy that a background task refreshes every
//! second, so no request ever waits on Redis for it. While Redis is down the
//! copy keeps its last reading: the site stays as it was (a site in
//! maintenance stays closed, an open one stays open).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;

use crate::cache::{Redis, RedisDown};

const KEY: &str = "maintenance";
const RECHECK: Duration = Duration::from_secs(1);

/// This instance's copy of the switch.
#[derive(Clone, Default)]
pub struct MaintenanceCache(Arc<AtomicBool>);

impl MaintenanceCache {
    /// The last reading.
    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Takes a new reading at once (the instance that flipped the switch).
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }

    /// Refreshes the copy from Redis every second until the runtime stops;
    /// a failed reading keeps the last one.
    pub async fn refresh_forever(self, redis: Redis) {
        loop {
            if let Ok(on) = read(&redis).await {
                self.set(on);
            }
            tokio::time::sleep(RECHECK).await;
        }
    }
}

/// The switch as Redis holds it.
pub async fn read(redis: &Redis) -> Result<bool, RedisDown> {
    let key = redis.key(KEY);
    redis
        .call(|mut c| {
            let key = key.clone();
            async move { c.get::<_, Option<String>>(key).await }
        })
        .await
        .map(|v| v.is_some())
}

/// Flips the switch for every instance.
pub async fn write(redis: &Redis, on: bool) -> Result<(), RedisDown> {
    let key = redis.key(KEY);
    redis
        .call(|mut c| {
            let key = key.clone();
            async move {
                if on {
                    c.set::<_, _, ()>(key, "1").await
                } else {
                    c.del::<_, ()>(key).await
                }
            }
        })
        .await
}
