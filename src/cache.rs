//! The app's own Redis connection (sessions use actix-session's store).

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;

use crate::settings::Settings;

/// A shared, self-reconnecting Redis connection plus the key namespace.
#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
    namespace: String,
}

impl Redis {
    /// Connects once; later failures reconnect in the background.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let client = redis::Client::open(settings.redis_url.expose_secret())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Redis { conn, namespace: settings.redis_namespace.clone() })
    }

    /// A connection handle; cheap to clone, multiplexed underneath.
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// `namespace:part` — every key the app writes goes through here.
    pub fn key(&self, part: &str) -> String {
        format!("{}:{}", self.namespace, part)
    }

    /// Round trip to the server.
    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut conn = self.conn();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// Counts a cache look-up, for the admin dashboard's hit rate. Best
    /// effort: a failure to count never fails the request.
    pub async fn record_lookup(&self, hit: bool) {
        let mut conn = self.conn();
        let key = self.key(if hit { "cache:hits" } else { "cache:misses" });
        let _: redis::RedisResult<i64> = redis::cmd("INCR").arg(&key).query_async(&mut conn).await;
    }

    /// Cache hits and misses since counting began; `None` without Redis.
    pub async fn lookups(&self) -> Option<(u64, u64)> {
        let mut conn = self.conn();
        let (hits, misses): (Option<u64>, Option<u64>) = redis::cmd("MGET")
            .arg(self.key("cache:hits"))
            .arg(self.key("cache:misses"))
            .query_async(&mut conn)
            .await
            .ok()?;
        Some((hits.unwrap_or(0), misses.unwrap_or(0)))
    }

    /// Share of cache look-ups that were hits, or `None` before the first
    /// look-up or without Redis.
    pub async fn hit_rate(&self) -> Option<f64> {
        let (hits, misses) = self.lookups().await?;
        (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64)
    }

    /// Deletes every cached value (`stats:*`) and the hit counters; returns
    /// how many keys went. Sessions, limits and switches are not cache.
    pub async fn clear_cache(&self) -> redis::RedisResult<usize> {
        let mut conn = self.conn();
        let pattern = self.key("stats:*");
        let mut cursor: u64 = 0;
        let mut removed = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut conn)
                .await?;
            if !keys.is_empty() {
                let n: usize = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
                removed += n;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
        let _: usize =
            redis::cmd("DEL").arg(self.key("cache:hits")).arg(self.key("cache:misses")).query_async(&mut conn).await?;
        Ok(removed)
    }
}
