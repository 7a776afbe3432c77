//! The application state: every shared service, built once at start-up and
//! handed to handlers (as `web::Data<AppState>`), middleware and workers.
//!
//! Only services live here, never request data. The types it holds come
//! from modules that do not depend on this one, so no import cycle runs
//! through it.

use std::sync::Arc;

use actix_web::{web, HttpRequest};

use crate::cache::Redis;
use crate::crypto::Cipher;
use crate::db::PgPool;
use crate::infra::job_signal::JobSignal;
use crate::infra::maintenance_switch::MaintenanceCache;
use crate::infra::metrics::Metrics;
use crate::infra::password::PasswordHasher;
use crate::infra::steam_client::{KeyBudget, RetryPolicy, SteamClient};
use crate::infra::storage::{LocalStorage, SharedStorage};
use crate::infra::streams::StreamCounter;
use crate::replica::Reads;
use crate::settings::Settings;
use crate::views::Views;

/// Data exports built at once per process: each reads a whole account and
/// holds a database connection while it does.
const EXPORTS_AT_ONCE: usize = 2;

/// Everything a request, a middleware or a worker may need.
pub struct AppState {
    /// The configuration read at start-up.
    pub settings: Settings,
    /// The PostgreSQL pool (the primary) requests use: each statement has
    /// the requests' time limit.
    pub pool: PgPool,
    /// The primary again, for the background workers (syncs, mail,
    /// housekeeping): no time limit, connections opened as jobs need them.
    pub background: PgPool,
    /// Where pages that only read read from: a replica while it is
    /// current, else the primary.
    pub reads: Reads,
    /// Redis: sessions, rate limits, the maintenance switch.
    pub redis: Redis,
    /// Argon2 hashing on a bounded set of threads.
    pub hasher: PasswordHasher,
    /// Encrypts Steam Web API keys and TOTP secrets at rest.
    pub cipher: Cipher,
    /// Where image files are kept.
    pub storage: SharedStorage,
    /// The Steam Web API client, with its per-key call budget.
    pub steam: SteamClient,
    /// Steam's OpenID provider, for "Sign in through Steam".
    pub openid: crate::infra::openid::Provider,
    /// Wakes this instance's job worker when a job (a sync, a mail) is queued.
    pub jobs: JobSignal,
    /// Open sync-progress streams per user.
    pub streams: StreamCounter,
    /// This instance's copy of the maintenance switch.
    pub maintenance: MaintenanceCache,
    /// Prometheus counters of this process.
    pub metrics: Metrics,
    /// Pages' data computed for users, kept while it is current.
    pub views: Views,
    /// The bytes of request bodies held in memory at once.
    pub body_budget: crate::body_budget::BodyBudget,
    /// Data exports this process builds at once.
    pub exports: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// Builds the services around a pool and a Redis client that are
    /// already connected.
    pub fn new(settings: Settings, pool: PgPool, redis: Redis) -> Self {
        let reads = match crate::db::build_replica_pool(&settings) {
            Some(replica) => Reads::with_replica(pool.clone(), replica),
            None => Reads::primary_only(pool.clone()),
        };
        let steam =
            SteamClient::new(settings.steam_api_base_url.clone(), RetryPolicy::default()).with_budget(KeyBudget {
                redis: redis.clone(),
                per_day: settings.steam_daily_call_budget,
                per_user_shared: settings.steam_shared_calls_per_user,
            });
        AppState {
            background: crate::db::build_background_pool(&settings),
            // Half the cores at most: a flood of sign-ins then slows sign-in,
            // not every other page.
            hasher: PasswordHasher::new(
                (std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) / 2).max(1),
            ),
            cipher: Cipher::from_settings(&settings),
            storage: Arc::new(LocalStorage::new(settings.upload_dir.clone())),
            steam,
            openid: crate::infra::openid::Provider::new(settings.steam_openid_url.clone()),
            jobs: JobSignal::default(),
            streams: StreamCounter::default(),
            maintenance: MaintenanceCache::default(),
            metrics: Metrics::new(),
            views: Views::new(settings.page_cache_bytes),
            body_budget: crate::body_budget::BodyBudget::new(settings.body_buffer_bytes),
            exports: Arc::new(tokio::sync::Semaphore::new(EXPORTS_AT_ONCE)),
            settings,
            pool,
            reads,
            redis,
        }
    }

    /// The state from a request, for middleware and extractors.
    pub fn of(req: &HttpRequest) -> &AppState {
        req.app_data::<web::Data<AppState>>().expect("AppState is registered at start-up")
    }
}
