//! The services the application state holds, below every domain: password
//! hashing, file storage, the Steam Web API client and OpenID provider, the
//! job signal, the maintenance switch's cache, stream counters and the
//! metrics registry. Nothing here imports a domain folder, so `state` can
//! hold them without an arrow up the layers.

pub mod job_signal;
pub mod legacy_hash;
pub mod maintenance_switch;
pub mod metrics;
pub mod openid;
pub mod password;
pub mod steam_client;
pub mod storage;
pub mod streams;
