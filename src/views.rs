//! What a page computed for a user, kept in this process's memory while
//! nothing it shows has changed.
//!
//! Every request already reads the session's row from PostgreSQL; the same
//! statement reads the user's version (`user_versions`, moved by triggers
//! whenever their library, goals, pins, Steam link or sync state change)
//! and the instance's (the rarity thresholds' time and the admin's cache
//! epoch). A page's data is kept under those numbers, so a hit costs no
//! query and can never show what a committed write has since changed, on
//! any node. Pages showing many users are also kept under a shared version
//! (a sequence moved at commit); what other users change in the catalogue
//! (a game's name, new global percentages) shows once the data is older
//! than [`TTL`] and the next request works it out again.

use std::any::Any;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::PgConnection;

use crate::error::AppError;
use crate::replica::Reads;

/// How long a page's data is used as it is; after that, the next request
/// works it out again (while others keep getting the old data meanwhile).
pub const TTL: Duration = Duration::from_secs(60);
/// How long data nobody asks for stays in memory.
const KEEP_UNUSED: Duration = Duration::from_secs(600);

pub use crate::versions::Versions;

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
}

/// One page's data, when it was worked out, and whether a request is
/// working it out again.
struct Kept {
    value: Arc<dyn Any + Send + Sync>,
    made: Instant,
    refreshing: AtomicBool,
}

type Entry = Arc<Kept>;

fn keep<T: Send + Sync + 'static>(value: T) -> Entry {
    Arc::new(Kept { value: Arc::new(value), made: Instant::now(), refreshing: AtomicBool::new(false) })
}

struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The page cache of this process.
pub struct Views {
    cache: Option<moka::future::Cache<ViewKey, Entry>>,
    fresh_for: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Views {
    /// A cache of at most `entries` pages (none when 0), each used as it is
    /// for [`TTL`].
    pub fn new(entries: u64) -> Self {
        Self::fresh_for(entries, TTL)
    }

    fn fresh_for(entries: u64, fresh_for: Duration) -> Self {
        let cache = (entries > 0)
            .then(|| moka::future::Cache::builder().max_capacity(entries).time_to_idle(KEEP_UNUSED).build());
        Views { cache, fresh_for, hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
    }

    /// The data under `key`, or what `compute` gives (then kept). Requests
    /// that miss the same key together wait for one computation rather than
    /// each running it (64 computations of a heavy user's stats at once
    /// took the page's p99 to 0.4 s). Data older than [`TTL`] is worked
    /// out again by the one request that finds it so, while the others get
    /// the old data meanwhile: under load, 64 requests waiting on that one
    /// put a spike of 50-90 ms in the library's p99 every minute. Errors
    /// are never kept; a failed refresh serves the old data.
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
                let stale = found.made.elapsed() >= self.fresh_for;
                if stale && found.refreshing.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok()
                {
                    // Lets another request try if this one fails or is
                    // dropped (its client went away) half-way.
                    let _refreshing = ClearOnDrop(&found.refreshing);
                    match compute().await {
                        Ok(value) => {
                            let fresh = keep(value);
                            cache.insert(key, fresh.clone()).await;
                            fresh
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "a cached page could not be worked out again; the old one serves");
                            found.clone()
                        }
                    }
                } else {
                    found
                }
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                cache.try_get_with(key, async { compute().await.map(keep) }).await.map_err(shared_error)?
            }
        };
        entry
            .value
            .downcast_ref::<T>()
            .cloned()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a cached page holds another type")))
    }

    /// [`Views::get_or`] for data read from PostgreSQL by `read`: on the
    /// read replica when it holds everything the key's versions name, else
    /// on the primary (see [`Reads::run`]).
    pub async fn load<T, F>(&self, reads: &Reads, key: ViewKey, read: F) -> Result<T, AppError>
    where
        T: Clone + Send + Sync + 'static,
        F: Fn(&mut PgConnection) -> Result<T, AppError> + Send + Sync + 'static,
    {
        let (user_id, versions) = (key.user_id, key.versions);
        self.get_or(key, || reads.run(user_id, versions, read)).await
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
    async fn old_data_is_worked_out_again_by_one_request_while_the_others_get_the_old() {
        let views = Views::fresh_for(10, Duration::ZERO);
        let _: String = views.get_or(key(1, 1), || async { Ok("old".to_owned()) }).await.unwrap();
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let refreshing = views.get_or(key(1, 1), || async {
            wait.await.unwrap();
            Ok("new".to_owned())
        });
        let meanwhile = async {
            let got: String = views.get_or(key(1, 1), || async { Ok("never".to_owned()) }).await.unwrap();
            let _ = release.send(());
            got
        };
        let (a, b) = tokio::join!(refreshing, meanwhile);
        assert_eq!((a.unwrap(), b), ("new".to_owned(), "old".to_owned()));
        let failed: String = views.get_or(key(1, 1), || async { Err(AppError::NotFound) }).await.unwrap();
        assert_eq!(failed, "new", "a failed refresh serves what there was");
        // A refresh abandoned half-way (its client went away) lets the next request try.
        let abandoned = views.get_or(key(1, 1), std::future::pending::<Result<String, AppError>>);
        futures_util::FutureExt::now_or_never(abandoned);
        let retried: String = views.get_or(key(1, 1), || async { Ok("retried".to_owned()) }).await.unwrap();
        assert_eq!(retried, "retried");
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
