//! The app's own Redis connection: every call has a short time limit, and
//! while Redis is known to be down calls fail at once instead of waiting,
//! until a background check sees it answer again.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;

use crate::settings::Settings;

/// The longest any request waits for one Redis call.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(300);
/// How often a Redis known to be down is asked whether it is back.
const RECHECK_EVERY: Duration = Duration::from_millis(100);
/// For this long after an outage begins, a call waits for Redis to answer
/// again instead of failing: a restart (about a second with the append-only
/// file) then costs requests a short wait, not a 503 page. Past it, calls
/// fail at once until Redis is back, so a long outage never holds requests.
pub const RIDE_THROUGH: Duration = Duration::from_secs(3);

/// Redis is down (or too slow); the caller decides what still works.
#[derive(Debug, thiserror::Error)]
#[error("Redis is unavailable")]
pub struct RedisDown;

/// Whether Redis answered lately, shared by every clone of [`Redis`].
#[derive(Default)]
struct Health {
    down: AtomicBool,
    /// When the current outage began, for the one log line at its end.
    since: Mutex<Option<Instant>>,
}

impl Health {
    fn mark_down(&self, why: &str) {
        if !self.down.swap(true, Ordering::SeqCst) {
            *self.since.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            // Once per outage, not once per failed call.
            tracing::warn!(reason = why, "Redis is unavailable; sessions and limits fall back until it answers");
        }
    }

    fn mark_up(&self) {
        if self.down.swap(false, Ordering::SeqCst) {
            let since = self.since.lock().unwrap_or_else(|p| p.into_inner()).take();
            let secs = since.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
            tracing::warn!(outage_seconds = secs, "Redis answers again");
        }
    }
}

/// Fixed-window counters in this process's memory: what rate limits fall
/// back to while Redis is down, so sign-in is never open to unlimited
/// guessing (each instance then counts on its own).
#[derive(Default)]
pub struct LocalCounters {
    windows: Mutex<std::collections::HashMap<String, (Instant, u64)>>,
}

/// Windows kept before expired ones are swept out.
const LOCAL_COUNTERS_SWEEP_AT: usize = 10_000;

impl LocalCounters {
    /// Counts one hit of `key` in a window of `window`; returns the count so
    /// far in the window and the seconds until it ends.
    pub fn hit(&self, key: &str, window: Duration) -> (u64, u64) {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= LOCAL_COUNTERS_SWEEP_AT {
            windows.retain(|_, (start, _)| now.duration_since(*start) < window.max(Duration::from_secs(3600)));
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        let left = window.saturating_sub(now.duration_since(entry.0)).as_secs().max(1);
        (entry.1, left)
    }
}

/// A shared, self-reconnecting Redis connection plus the key namespace.
#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
    namespace: String,
    health: Arc<Health>,
    /// Rate-limit counts while Redis is down.
    pub fallback: Arc<LocalCounters>,
}

impl Redis {
    /// Connects once; later failures reconnect in the background. Starts
    /// the health check on the current runtime.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let client = redis::Client::open(settings.redis_url.expose_secret())?;
        // Short limits everywhere, and reconnection attempts that never back
        // off past half a second: a restarted Redis is used again at once.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CALL_TIMEOUT)
            .set_response_timeout(CALL_TIMEOUT)
            .set_number_of_retries(1)
            .set_factor(50)
            .set_max_delay(500);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        let redis = Redis {
            conn,
            namespace: settings.redis_namespace.clone(),
            health: Arc::default(),
            fallback: Arc::default(),
        };
        let watcher = redis.clone();
        actix_web::rt::spawn(async move { watcher.watch().await });
        Ok(redis)
    }

    /// While Redis is down, pings it every [`RECHECK_EVERY`] and marks it up
    /// at the first answer. Ends when the runtime stops.
    async fn watch(self) {
        loop {
            tokio::time::sleep(RECHECK_EVERY).await;
            if self.health.down.load(Ordering::SeqCst) {
                let mut conn = self.conn.clone();
                let ping = redis::cmd("PING");
                if let Ok(Ok(_)) = tokio::time::timeout(CALL_TIMEOUT, ping.query_async::<String>(&mut conn)).await {
                    self.health.mark_up();
                }
            }
        }
    }

    /// False while Redis is known to be down.
    pub fn is_up(&self) -> bool {
        !self.health.down.load(Ordering::SeqCst)
    }

    /// Waits while the current outage is younger than [`RIDE_THROUGH`] and
    /// Redis has not answered again; true when it is up. Callers that would
    /// otherwise decide "sessions are down" from [`Redis::is_up`] wait here
    /// first, so a restart costs them a short wait like any call.
    pub async fn ride_through(&self) -> bool {
        loop {
            if self.is_up() {
                return true;
            }
            let since = *self.health.since.lock().unwrap_or_else(|p| p.into_inner());
            if since.is_none_or(|t| t.elapsed() >= RIDE_THROUGH) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs one Redis call (a command or a pipeline on the connection it is
    /// given) within [`CALL_TIMEOUT`]. Early in an outage it waits for Redis
    /// to come back (see [`RIDE_THROUGH`]) and tries a call that found no
    /// connection once more; later in one it fails at once. Marks Redis down
    /// when a call fails or times out.
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, RedisDown>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        if !self.ride_through().await {
            return Err(RedisDown);
        }
        match tokio::time::timeout(CALL_TIMEOUT, f(self.conn.clone())).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if is_connection_error(&e) => {
                self.health.mark_down(&e.to_string());
                // Refused or dropped: the server is restarting or gone. Once
                // it answers again the call is made again; a command that
                // did reach the old server is one the app may repeat (reads,
                // TTLs, counters, a session written under the same key).
                if self.ride_through().await {
                    if let Ok(Ok(v)) = tokio::time::timeout(CALL_TIMEOUT, f(self.conn.clone())).await {
                        return Ok(v);
                    }
                }
                Err(RedisDown)
            }
            Ok(Err(e)) => {
                // A command error (wrong type, script error) is not an outage.
                tracing::error!(error = %e, "a Redis command failed");
                Err(RedisDown)
            }
            Err(_) => {
                self.health.mark_down("a call took longer than its time limit");
                Err(RedisDown)
            }
        }
    }

    /// A connection handle; cheap to clone, multiplexed underneath. Calls on
    /// it have no outage handling: prefer [`Redis::call`].
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// `namespace:part` — every key the app writes goes through here.
    pub fn key(&self, part: &str) -> String {
        format!("{}:{}", self.namespace, part)
    }

    /// Round trip to the server.
    pub async fn ping(&self) -> Result<(), RedisDown> {
        // Asked even while marked down: readiness must see recovery.
        let mut conn = self.conn();
        match tokio::time::timeout(CALL_TIMEOUT, redis::cmd("PING").query_async::<String>(&mut conn)).await {
            Ok(Ok(_)) => {
                self.health.mark_up();
                Ok(())
            }
            Ok(Err(e)) => {
                self.health.mark_down(&e.to_string());
                Err(RedisDown)
            }
            Err(_) => {
                self.health.mark_down("PING took longer than its time limit");
                Err(RedisDown)
            }
        }
    }
}

/// Errors that mean "no connection" rather than "the command was wrong".
fn is_connection_error(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_counters_count_per_key_within_a_window_and_start_again_after_it() {
        let counters = LocalCounters::default();
        let minute = Duration::from_secs(60);
        assert_eq!(counters.hit("a", minute).0, 1);
        assert_eq!(counters.hit("a", minute).0, 2);
        assert_eq!(counters.hit("b", minute).0, 1);
        let (_, left) = counters.hit("a", minute);
        assert!((1..=60).contains(&left));
        // A window that has passed starts again.
        assert_eq!(counters.hit("c", Duration::ZERO).0, 1);
        assert_eq!(counters.hit("c", Duration::ZERO).0, 1);
    }
}
