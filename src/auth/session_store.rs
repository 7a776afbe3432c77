//! The session store: actix-session's Redis store with every key under
//! `REDIS_NAMESPACE`, and a short life for sessions nobody signed in to.

use std::collections::HashMap;

use actix_session::storage::{LoadError, RedisSessionStore, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;

/// How long Redis keeps a session that holds no signed-in user (a visitor's
/// CSRF token, a half-finished 2FA step). Signed-in sessions keep the
/// middleware's longer TTL; the registry enforces their own limits.
pub const ANONYMOUS_TTL: Duration = Duration::hours(2);

/// Session keys that mark a signed-in browser.
const SIGNED_IN_KEYS: [&str; 2] = ["sid", "actix_identity.user_id"];

/// [`RedisSessionStore`] with per-state lifetimes.
#[derive(Clone)]
pub struct NamespacedSessionStore {
    inner: RedisSessionStore,
}

impl NamespacedSessionStore {
    /// Connects to `redis_url`; every session lives at `{namespace}:session:{key}`.
    pub async fn connect(redis_url: &str, namespace: &str) -> anyhow::Result<Self> {
        let prefix = format!("{namespace}:session:");
        let inner =
            RedisSessionStore::builder(redis_url).cache_keygen(move |key| format!("{prefix}{key}")).build().await?;
        Ok(NamespacedSessionStore { inner })
    }

    fn ttl_for(state: &HashMap<String, String>, ttl: &Duration) -> Duration {
        if SIGNED_IN_KEYS.iter().any(|k| state.contains_key(*k)) {
            *ttl
        } else {
            (*ttl).min(ANONYMOUS_TTL)
        }
    }
}

impl SessionStore for NamespacedSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        self.inner.load(session_key).await
    }

    async fn save(&self, session_state: HashMap<String, String>, ttl: &Duration) -> Result<SessionKey, SaveError> {
        let ttl = Self::ttl_for(&session_state, ttl);
        self.inner.save(session_state, &ttl).await
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let ttl = Self::ttl_for(&session_state, ttl);
        self.inner.update(session_key, session_state, &ttl).await
    }

    async fn update_ttl(&self, session_key: &SessionKey, ttl: &Duration) -> Result<(), anyhow::Error> {
        // Only called under a policy that extends every request's TTL, which
        // this app does not use; the state (and so the right TTL) is unknown
        // here, so keep the shorter one.
        self.inner.update_ttl(session_key, &(*ttl).min(ANONYMOUS_TTL)).await
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        self.inner.delete(session_key).await
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
