//! The Prometheus registry and the app's metrics, one set per process
//! (served at `/metrics` by `crate::metrics::routes`).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

/// The app's metrics, one set per process.
#[derive(Clone)]
pub struct Metrics {
    pub(crate) registry: Registry,
    pub(crate) requests: IntCounterVec,
    pub(crate) latency: HistogramVec,
    pub(crate) logins: IntCounterVec,
    pub(crate) pool: IntGaugeVec,
    pub(crate) queue: IntGaugeVec,
    pub(crate) cache: IntGaugeVec,
    pub(crate) cache_kept: IntGaugeVec,
    pub(crate) body_buffer: IntGauge,
    pub(crate) users: IntGauge,
    pub(crate) replica_reads: IntGaugeVec,
    pub(crate) replica_lag: prometheus::Gauge,
    pub(crate) replica_usable: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("questline".into()), None).expect("valid registry");
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route, method and status"),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "Time to answer, by route")
                .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["route", "method"],
        )
        .expect("valid metric");
        let logins = IntCounterVec::new(Opts::new("logins_total", "Sign-in attempts by result"), &["result"])
            .expect("valid metric");
        let pool = IntGaugeVec::new(Opts::new("db_pool_connections", "Database pool connections"), &["state"])
            .expect("valid metric");
        let queue =
            IntGaugeVec::new(Opts::new("queue_items", "Jobs and emails by queue and state"), &["queue", "state"])
                .expect("valid metric");
        let cache = IntGaugeVec::new(Opts::new("cache_lookups", "Cache look-ups since counting began"), &["result"])
            .expect("valid");
        let cache_kept = IntGaugeVec::new(
            Opts::new(
                "page_cache",
                "The page cache now: bytes and pages kept, and pages too heavy to keep since start",
            ),
            &["what"],
        )
        .expect("valid");
        let body_buffer =
            IntGauge::new("body_buffer_bytes", "Bytes of request bodies held in memory now").expect("valid metric");
        let users = IntGauge::new("users", "Registered accounts").expect("valid metric");
        let replica_reads = IntGaugeVec::new(
            Opts::new(
                "replica_reads",
                "Reads of read-only pages since this process started: served by the replica, or by the primary instead and why",
            ),
            &["served_by", "reason"],
        )
        .expect("valid metric");
        let replica_lag =
            prometheus::Gauge::new("replica_lag_seconds", "The read replica's lag as last measured (-1: unknown)")
                .expect("valid metric");
        let replica_usable =
            IntGauge::new("replica_usable", "1 while read-only pages may read from the replica").expect("valid metric");
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(logins.clone()),
            Box::new(pool.clone()),
            Box::new(queue.clone()),
            Box::new(cache.clone()),
            Box::new(cache_kept.clone()),
            Box::new(body_buffer.clone()),
            Box::new(users.clone()),
            Box::new(replica_reads.clone()),
            Box::new(replica_lag.clone()),
            Box::new(replica_usable.clone()),
        ] {
            registry.register(m).expect("metric registered once");
        }
        Metrics {
            registry,
            requests,
            latency,
            logins,
            pool,
            queue,
            cache,
            cache_kept,
            body_buffer,
            users,
            replica_reads,
            replica_lag,
            replica_usable,
        }
    }

    /// Counts a sign-in attempt (`success`, `failure`, `second_factor`…).
    pub fn login(&self, result: &str) {
        self.logins.with_label_values(&[result]).inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
