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
use get_size2::GetSize;
use moka::ops::compute::{CompResult, Op};

use crate::error::AppError;
use crate::replica::Reads;

/// How long a page's data is used as it is; after that, the next request
/// works it out again (while others keep getting the old data meanwhile).
pub const TTL: Duration = Duration::from_secs(60);
/// How long data nobody asks for stays in memory.
const KEEP_UNUSED: Duration = Duration::from_secs(600);
/// No one page may take more than this share of the budget: a page that
/// weighs more is served but not kept, so one account's data can never
/// push everybody else's out.
const LARGEST_SHARE: u64 = 32;

pub use crate::versions::Versions;

/// One page's data: which page, for whom, under which versions, and the
/// page's own parameters (sort, filter, page number…).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ViewKey {
    page: &'static str,
    user_id: i64,
    versions: Versions,
    params: String,
    /// False for pages that are worked out each time, never kept.
    keep: bool,
}

/// Pages of a list past this one are worked out each time, never kept:
/// nobody reads page 9,000 twice, and a visitor asking for every page
/// number must not push everybody else's pages out.
pub const KEPT_PAGES: i64 = 20;

impl ViewKey {
    /// The key of `page` for `user_id` with these parameters.
    pub fn new(page: &'static str, user_id: i64, versions: Versions, params: impl Into<String>) -> Self {
        ViewKey { page, user_id, versions, params: params.into(), keep: true }
    }

    /// The same key, kept only if `keep` (a search, a page far down a
    /// list: what one visitor can vary without end is not kept).
    pub fn kept_if(mut self, keep: bool) -> Self {
        self.keep &= keep;
        self
    }

    /// Where the page is kept: one place per page, user and parameters, so
    /// the data of a version that has moved on is replaced at once by the
    /// new one instead of lingering beside it.
    fn slot(&self) -> Slot {
        Slot { page: self.page, user_id: self.user_id, params: self.params.clone() }
    }
}

/// A [`ViewKey`] without its versions: the versions live in the entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Slot {
    page: &'static str,
    user_id: i64,
    params: String,
}

/// One page's data, the versions it was read under, its weight, when it
/// was worked out, and whether a request is working it out again.
struct Kept {
    value: Arc<dyn Any + Send + Sync>,
    versions: Versions,
    /// Bytes it holds, as the budget counts them.
    bytes: u64,
    made: Instant,
    refreshing: AtomicBool,
}

type Entry = Arc<Kept>;

/// Bytes one kept page costs: the value (stack and heap), the key and the
/// entry's own bookkeeping.
fn weigh<T: GetSize>(value: &T, slot: &Slot) -> u64 {
    let own = std::mem::size_of::<Kept>() + std::mem::size_of::<Slot>() + slot.params.len();
    (value.get_size() + own) as u64
}

fn keep<T: GetSize + Send + Sync + 'static>(value: T, versions: Versions, slot: &Slot) -> Entry {
    let bytes = weigh(&value, slot);
    Arc::new(Kept { value: Arc::new(value), versions, bytes, made: Instant::now(), refreshing: AtomicBool::new(false) })
}

/// Heap bytes a JSON value holds, for cached values that carry one (a job's
/// payload): strings, and each array slot and object entry with its key.
pub fn json_heap_size(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    let slot = std::mem::size_of::<Value>();
    match value {
        Value::String(s) => s.capacity(),
        Value::Array(items) => items.capacity() * slot + items.iter().map(json_heap_size).sum::<usize>(),
        // A map entry: its key, its value's slot, and the map's own links.
        Value::Object(map) => {
            map.iter().map(|(k, v)| k.capacity() + slot + 3 * std::mem::size_of::<usize>() + json_heap_size(v)).sum()
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The page cache of this process.
pub struct Views {
    cache: Option<moka::future::Cache<Slot, Entry>>,
    /// The heaviest page kept; heavier ones are served, not kept.
    largest: u64,
    fresh_for: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Pages worked out but too heavy to keep.
    too_heavy: AtomicU64,
}

impl Views {
    /// A cache of at most `budget` bytes of pages (none when 0), each used
    /// as it is for [`TTL`].
    pub fn new(budget: u64) -> Self {
        Self::fresh_for(budget, TTL)
    }

    fn fresh_for(budget: u64, fresh_for: Duration) -> Self {
        let cache = (budget > 0).then(|| {
            moka::future::Cache::builder()
                .max_capacity(budget)
                .weigher(|_: &Slot, kept: &Entry| u32::try_from(kept.bytes).unwrap_or(u32::MAX))
                .time_to_idle(KEEP_UNUSED)
                .build()
        });
        Views {
            cache,
            largest: (budget / LARGEST_SHARE).max(1),
            fresh_for,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            too_heavy: AtomicU64::new(0),
        }
    }

    /// The data under `key`, or what `compute` gives (then kept, if it
    /// weighs no more than a share of the budget). Requests that miss the
    /// same page together wait for one computation rather than each running
    /// it (64 computations of a heavy user's stats at once took the page's
    /// p99 to 0.4 s). Data older than [`TTL`] is worked out again by the
    /// one request that finds it so, while the others get the old data
    /// meanwhile: under load, 64 requests waiting on that one put a spike
    /// of 50-90 ms in the library's p99 every minute. Data read under
    /// other versions is never served: it is replaced. Errors are never
    /// kept; a failed refresh serves the old data.
    pub async fn get_or<T, F, Fut>(&self, key: ViewKey, compute: F) -> Result<T, AppError>
    where
        T: Clone + GetSize + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, AppError>>,
    {
        let Some(cache) = self.cache.as_ref().filter(|_| key.keep) else { return compute().await };
        let slot = key.slot();
        let wanted = key.versions;
        let found = cache.get(&slot).await.filter(|found| found.versions == wanted);
        let entry = match found {
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
                            let fresh = keep(value, wanted, &slot);
                            if self.fits(&fresh) {
                                cache.insert(slot, fresh.clone()).await;
                            } else {
                                cache.invalidate(&slot).await;
                            }
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
                // Computations of one slot run one at a time: a request that
                // waited finds the page the one before it kept, and uses it.
                let mut served = None;
                let result = cache
                    .entry(slot.clone())
                    .and_try_compute_with(|current| {
                        let served = &mut served;
                        async move {
                            if current.is_some_and(|c| c.value().versions == wanted) {
                                return Ok(Op::Nop);
                            }
                            let fresh = keep(compute().await?, wanted, &slot);
                            if !self.fits(&fresh) {
                                *served = Some(fresh);
                                return Ok::<_, AppError>(Op::Remove);
                            }
                            Ok(Op::Put(fresh))
                        }
                    })
                    .await?;
                match (served, result) {
                    (Some(heavy), _) => heavy,
                    (None, CompResult::Inserted(e) | CompResult::ReplacedWith(e) | CompResult::Unchanged(e)) => {
                        e.into_value()
                    }
                    (None, CompResult::StillNone(_) | CompResult::Removed(_)) => {
                        return Err(AppError::Internal(anyhow::anyhow!("a cached page vanished while it was kept")))
                    }
                }
            }
        };
        entry
            .value
            .downcast_ref::<T>()
            .cloned()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("a cached page holds another type")))
    }

    /// Whether a page weighs little enough to keep; one that does not is
    /// counted as too heavy.
    fn fits(&self, page: &Kept) -> bool {
        let fits = page.bytes <= self.largest;
        if !fits {
            self.too_heavy.fetch_add(1, Ordering::Relaxed);
        }
        fits
    }

    /// [`Views::get_or`] for data read from PostgreSQL by `read`: on the
    /// read replica when it holds everything the key's versions name, else
    /// on the primary (see [`Reads::run`]).
    pub async fn load<T, F>(&self, reads: &Reads, key: ViewKey, read: F) -> Result<T, AppError>
    where
        T: Clone + GetSize + Send + Sync + 'static,
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

    /// Bytes kept now, as the budget weighs them, and pages kept. Settles
    /// after moka's pending housekeeping, which this runs first.
    pub async fn weight(&self) -> (u64, u64) {
        match &self.cache {
            Some(c) => {
                c.run_pending_tasks().await;
                (c.weighted_size(), c.entry_count())
            }
            None => (0, 0),
        }
    }

    /// Pages worked out but too heavy to keep, since this process started.
    pub fn too_heavy(&self) -> u64 {
        self.too_heavy.load(Ordering::Relaxed)
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

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    fn key(user: i64, version: i64) -> ViewKey {
        ViewKey::new("library", 1, Versions { user: version, ..Versions::default() }, format!("sort={user}"))
    }

    #[actix_web::test]
    async fn a_page_is_computed_once_per_version_and_again_when_the_version_moves() {
        let views = Views::new(MB);
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
        let views = Views::new(MB);
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
        let views = Views::new(MB);
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
        let views = Views::fresh_for(MB, Duration::ZERO);
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
        let views = Views::new(MB);
        let _: String = views.get_or(key(1, 1), || async { Ok("old".to_owned()) }).await.unwrap();
        assert_eq!(views.clear(), 1);
        let again: String = views.get_or(key(1, 1), || async { Ok("new".to_owned()) }).await.unwrap();
        assert_eq!(again, "new");
    }

    #[actix_web::test]
    async fn a_new_version_replaces_the_old_page_instead_of_keeping_both() {
        let views = Views::new(MB);
        for version in 1..=5 {
            let _: String = views.get_or(key(1, version), || async { Ok("x".repeat(1000)) }).await.unwrap();
        }
        let (bytes, pages) = views.weight().await;
        assert_eq!(pages, 1, "one page per user, page and parameters");
        assert!((1000..2000).contains(&bytes), "weighed {bytes} bytes");
    }

    #[actix_web::test]
    async fn the_cache_keeps_to_its_budget_in_bytes_whatever_the_number_of_pages() {
        let views = Views::new(MB);
        for user in 0..200 {
            let k = ViewKey::new("library", user, Versions::default(), "");
            let _: String = views.get_or(k, || async { Ok("y".repeat(20_000)) }).await.unwrap();
        }
        let (bytes, pages) = views.weight().await;
        assert!(bytes <= MB, "kept {bytes} bytes in {pages} pages");
        assert!(pages < 60, "200 pages of 20 KB cannot all fit in 1 MB: kept {pages}");
    }

    #[actix_web::test]
    async fn a_page_heavier_than_its_share_is_served_but_not_kept() {
        let views = Views::new(MB);
        let computed = std::cell::Cell::new(0);
        for _ in 0..2 {
            let got: String = views
                .get_or(key(1, 1), || async {
                    computed.set(computed.get() + 1);
                    Ok("z".repeat((MB / 16) as usize))
                })
                .await
                .unwrap();
            assert_eq!(got.len(), (MB / 16) as usize);
        }
        assert_eq!(computed.get(), 2, "worked out each time, never kept");
        assert_eq!(views.weight().await, (0, 0));
        assert_eq!(views.too_heavy(), 2);
    }

    #[actix_web::test]
    async fn a_key_not_to_keep_is_worked_out_each_time_and_takes_no_room() {
        let views = Views::new(MB);
        for page in 0..50 {
            let k = ViewKey::new("profile", 0, Versions::default(), format!("alice\u{1f}{page}")).kept_if(page < 3);
            let _: String = views.get_or(k, || async { Ok("p".repeat(100)) }).await.unwrap();
        }
        assert_eq!(views.weight().await.1, 3, "only the pages near the top are kept");
    }
}
