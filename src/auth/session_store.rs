//! Where sessions live: Redis, through the app's own connection (so every
//! call has a time limit and fails at once while Redis is down), under
//! `REDIS_NAMESPACE:session:`, with a short life for sessions nobody signed
//! in to.
//!
//! actix-session's own Redis store waits on a connection of its own with no
//! time limit, which turned a Redis restart into a two-minute outage of the
//! whole site; this one never makes a request wait.

use std::collections::HashMap;

use actix_session::storage::{generate_session_key, LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use redis::AsyncCommands;

use crate::cache::Redis;

/// How long Redis keeps a session that holds no signed-in user (a visitor's
/// CSRF token, a half-finished 2FA step). Signed-in sessions keep the
/// middleware's longer TTL; the registry enforces their own limits.
pub const ANONYMOUS_TTL: Duration = Duration::hours(2);

/// The session store.
#[derive(Clone)]
pub struct NamespacedSessionStore {
    redis: Redis,
}

impl NamespacedSessionStore {
    /// Sessions kept through `redis`, under its namespace.
    pub fn new(redis: Redis) -> Self {
        NamespacedSessionStore { redis }
    }

    fn key(&self, session_key: &str) -> String {
        self.redis.key(&format!("session:{session_key}"))
    }

    fn ttl_for(state: &HashMap<String, String>, ttl: &Duration) -> Duration {
        if state.keys().any(|k| crate::typed_session::marks_signed_in(k)) {
            *ttl
        } else {
            (*ttl).min(ANONYMOUS_TTL)
        }
    }

    fn seconds(ttl: Duration) -> u64 {
        ttl.whole_seconds().max(1) as u64
    }

    /// Writes `state` under `key`: only if absent (`only_new`) or only if
    /// present. False when the condition failed; an error when Redis is down.
    async fn write(
        &self,
        key: &str,
        state: &HashMap<String, String>,
        ttl: &Duration,
        only_new: bool,
    ) -> Result<bool, anyhow::Error> {
        let body = serde_json::to_string(state)?;
        let (key, secs) = (self.key(key), Self::seconds(Self::ttl_for(state, ttl)));
        let written: Option<String> = self
            .redis
            .call(|mut c| {
                let (key, body) = (key.clone(), body.clone());
                async move {
                    redis::cmd("SET")
                        .arg(key)
                        .arg(body)
                        .arg("EX")
                        .arg(secs)
                        .arg(if only_new { "NX" } else { "XX" })
                        .query_async(&mut c)
                        .await
                }
            })
            .await?;
        Ok(written.is_some())
    }
}

impl SessionStore for NamespacedSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let key = self.key(session_key.as_ref());
        match self
            .redis
            .call(|mut c| {
                let key = key.clone();
                async move { c.get::<_, Option<String>>(key).await }
            })
            .await
        {
            Ok(Some(raw)) => {
                serde_json::from_str(&raw).map(Some).map_err(|e| LoadError::Deserialization(anyhow::Error::new(e)))
            }
            Ok(None) => Ok(None),
            // Redis is down: the request goes on without a session. Pages
            // that need no one keep working; `CurrentUser` answers 503 to a
            // browser that came with a session cookie, and no form writes a
            // session meanwhile (see `PageContext::csrf_token`), so the
            // browser keeps its cookie for when Redis is back.
            Err(_) => Ok(None),
        }
    }

    async fn save(&self, state: HashMap<String, String>, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let session_key = generate_session_key();
        self.write(session_key.as_ref(), &state, ttl, true).await.map_err(SaveError::Other)?;
        Ok(session_key)
    }

    async fn update(
        &self,
        session_key: SessionKey,
        state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        if self.write(session_key.as_ref(), &state, ttl, false).await.map_err(UpdateError::Other)? {
            return Ok(session_key);
        }
        // It expired since this request loaded it: store it afresh.
        let fresh = generate_session_key();
        self.write(fresh.as_ref(), &state, ttl, true).await.map_err(UpdateError::Other)?;
        Ok(fresh)
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
        // Only called under a policy that extends every request's TTL, which
        // this app does not use; the state is unknown here, so keep the
        // shorter life.
        let (key, secs) = (self.key(session_key.as_ref()), Self::seconds((*ttl).min(ANONYMOUS_TTL)));
        self.redis
            .call(|mut c| {
                let key = key.clone();
                async move { c.expire::<_, ()>(key, secs as i64).await }
            })
            .await?;
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        let key = self.key(session_key.as_ref());
        self.redis
            .call(|mut c| {
                let key = key.clone();
                async move { c.del::<_, ()>(key).await }
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_signed_in_sessions_keep_the_long_ttl() {
        let long = Duration::days(14);
        let mut state = HashMap::new();
        state.insert("csrf".to_owned(), "\"t\"".to_owned());
        assert_eq!(NamespacedSessionStore::ttl_for(&state, &long), ANONYMOUS_TTL);
        state.insert("sid".to_owned(), "\"s\"".to_owned());
        assert_eq!(NamespacedSessionStore::ttl_for(&state, &long), long);
    }
}
