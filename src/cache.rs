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
}
