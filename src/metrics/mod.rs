//! Prometheus metrics at `/metrics`: requests by route, latency, pool,
//! queues, cache and sign-ins. Reachable with `Authorization: Bearer
//! $METRICS_TOKEN` when a token is configured, else from loopback only.

pub mod numbers;
pub mod routes;
