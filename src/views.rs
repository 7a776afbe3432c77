//! What a page computed for a user, kept in this process's memory while
//! nothing it shows has changed.
//!
//! Every request already reads the session's row from PostgreSQL; the same
//! statement reads the user's version (`user_versions`, moved by triggers
//! whenever their library, goals, pins, Steam link or sync state change)
//! and the instance's (the rarity thresholds' time and the admin's cache
//! epoch). A page's data is kept under those numbers, so a hit costs no
//! query and can never show what a committed write has since changed, on
//! any node. What other users change (a game's name, a new shared goal, the
//! leaderboard) shows within [`TTL`].

use std::any::Any;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::PgConnection;

use crate::db::{self, PgPool};
use crate::error::AppError;

/// The longest any page's data is kept.
pub const TTL: Duration = Duration::from_secs(60);

/// The numbers a user's cached pages are valid under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Versions {
    /// Moves with every committed change to the user's own data.
    pub user: i64,
    /// Moves with every committed change to what many users see together
    /// (shared goals, totals, profile settings).
    pub shared: i64,
    /// When the rarity thresholds last changed (microseconds).
    pub tiers_at: i64,
    /// Moved by an admin clearing the cached pages.
    pub epoch: i64,
}

/// One page's data: which page, for whom, under which versions, and the
/// page's own parameters (sort, filter, page number…).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ViewKey {
    page: &'static str,
    user_id: i64,
    versions: Versions,
    params: String,
}

impl ViewKey {
    /// The key of `page` for `user_id` with these parameters.
    pub fn new(page: &'static str, user_id: i64, versions: Versions, params: impl Into<String>) -> Self {
        ViewKey { page, user_id, versions, params: params.into() }
    }

    /// The key of a page anyone may see, as `viewer` (a signed-in user's id)
    /// or a visitor (user 0) sees it.
    pub fn for_viewer(page: &'static str, viewer: Option<i64>, versions: Versions, params: impl Into<String>) -> Self {
        Self::new(page, viewer.unwrap_or(0), versions, params)
    }
}

type Entry = Arc<dyn Any + Send + Sync>;

/// The page cache of this process.
pub struct Views {
    cache: Option<moka::future::Cache<ViewKey, Entry>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Views {
    /// A cache of at most `entries` pages (none when 0), each kept at most [`TTL`].
    pub fn new(entries: u64) -> Self {
        let cache =
            (entries > 0).then(|| moka::future::Cache::builder().max_capacity(entries).time_to_live(TTL).build());
        Views { cache, hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
    }

    /// The data under `key`, or what `compute` gives (then kept). Requests
    /// that miss the same key together wait for one computation rather than
    /// each running it (when an entry expires under load, 64 computations
    /// of a heavy user's stats at once took the page's p99 to 0.4 s).
    /// Errors are never kept.
    pub async fn get_or<T, F, Fut>(&self, key: ViewKey, compute: F) -> Result<T, AppError>
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, AppError>>,
    {
        let Some(cache) = &self.cache else { return compute().await };
        let entry = match cache.get(&key).await {
            Some(found) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                found
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                cache
                    .try_get_with(key, async { compute().await.map(|v| Arc::new(v) as Entry) })
                    .await
                    .map_err(shared_error)?
            }
        };
        entry
            .downcast_ref::<T>()
            .cloned()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a cached page holds another type")))
    }

    /// [`Views::get_or`] for data read from PostgreSQL by `read`, on the
    /// blocking pool like [`db::run`].
    pub async fn load<T, F>(&self, pool: &PgPool, key: ViewKey, read: F) -> Result<T, AppError>
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce(&mut PgConnection) -> Result<T, AppError> + Send + 'static,
    {
        self.get_or(key, || db::run(pool, read)).await
    }

    /// Hits and misses since this process started.
    pub fn lookups(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }

    /// Share of look-ups that were hits; `None` before the first.
    pub fn hit_rate(&self) -> Option<f64> {
        let (hits, misses) = self.lookups();
        (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64)
    }

    /// Forgets everything this process keeps, and starts counting again.
    /// Other processes stop using theirs when the epoch moves.
    pub fn clear(&self) -> u64 {
        let n = self.cache.as_ref().map_or(0, |c| {
            let n = c.iter().count() as u64;
            c.invalidate_all();
            n
        });
        self.hits.store(0, Ordering::Relaxed);
        self.misses.store(0, Ordering::Relaxed);
        n
    }
}

/// The error of a computation other requests waited for: each gets its own
/// copy, with the same status.
fn shared_error(e: Arc<AppError>) -> AppError {
    Arc::try_unwrap(e).unwrap_or_else(|shared| match &*shared {
        AppError::NotFound => AppError::NotFound,
        AppError::BadRequest(m) => AppError::BadRequest(m.clone()),
        AppError::Denied(m) => AppError::Denied(m.clone()),
        AppError::Forbidden => AppError::Forbidden,
        AppError::Unavailable(e) => AppError::Unavailable(anyhow::anyhow!("{e:#}")),
        other => AppError::Internal(anyhow::anyhow!("{other:#}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(user: i64, version: i64) -> ViewKey {
        ViewKey::new("library", 1, Versions { user: version, ..Versions::default() }, format!("sort={user}"))
    }

    #[actix_web::test]
    async fn a_page_is_computed_once_per_version_and_again_when_the_version_moves() {
        let views = Views::new(10);
        let computed = std::cell::Cell::new(0);
        let get = |k: ViewKey, v: &'static str| {
            let computed = &computed;
            let views = &views;
            async move {
                views
                    .get_or(k, || async move {
                        computed.set(computed.get() + 1);
                        Ok(v.to_owned())
                    })
                    .await
                    .unwrap()
            }
        };
        assert_eq!(get(key(1, 1), "first").await, "first");
        assert_eq!(get(key(1, 1), "second").await, "first", "the kept value answers");
        assert_eq!(get(key(1, 2), "third").await, "third", "a new version computes again");
        assert_eq!(computed.get(), 2);
        assert_eq!(views.lookups(), (1, 2));
    }

    #[actix_web::test]
    async fn errors_are_not_kept_and_a_disabled_cache_always_computes() {
        let views = Views::new(10);
        let failed: Result<String, AppError> = views.get_or(key(1, 1), || async { Err(AppError::NotFound) }).await;
        assert!(failed.is_err());
        let ok: String = views.get_or(key(1, 1), || async { Ok("now".to_owned()) }).await.unwrap();
        assert_eq!(ok, "now");

        let off = Views::new(0);
        for expected in ["a", "b"] {
            let got: String = off.get_or(key(1, 1), || async move { Ok(expected.to_owned()) }).await.unwrap();
            assert_eq!(got, expected);
        }
    }

    #[actix_web::test]
    async fn requests_missing_together_share_one_computation() {
        let views = Views::new(10);
        let computed = std::cell::Cell::new(0);
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let slow = views.get_or(key(1, 1), || async {
            computed.set(computed.get() + 1);
            // Holds the computation open until the second request waits on it.
            wait.await.unwrap();
            Ok("once".to_owned())
        });
        let second = async {
            let mut got = std::pin::pin!(views.get_or(key(1, 1), || async {
                computed.set(computed.get() + 1);
                Ok("twice".to_owned())
            }));
            // One poll: it misses and starts waiting on the first computation.
            std::future::poll_fn(|cx| {
                let _ = got.as_mut().poll(cx);
                std::task::Poll::Ready(())
            })
            .await;
            let _ = release.send(());
            got.await
        };
        let (a, b) = tokio::join!(slow, second);
        assert_eq!((a.unwrap(), b.unwrap()), ("once".to_owned(), "once".to_owned()));
        assert_eq!(computed.get(), 1);
    }

    #[actix_web::test]
    async fn clearing_forgets_every_page() {
        let views = Views::new(10);
        let _: String = views.get_or(key(1, 1), || async { Ok("old".to_owned()) }).await.unwrap();
        assert_eq!(views.clear(), 1);
        let again: String = views.get_or(key(1, 1), || async { Ok("new".to_owned()) }).await.unwrap();
        assert_eq!(again, "new");
    }
}
