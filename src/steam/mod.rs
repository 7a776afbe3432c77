//! Steam: the Web API client, linked accounts, library sync and the pages
//! that show the result.

pub mod account;
pub mod client;
pub mod conflicts;
pub mod demo;
pub mod fake;
pub mod ids;
pub mod instance_key;
pub mod library;
pub mod link;
pub mod openid;
pub mod service;
pub mod stats;
pub mod streams;
pub mod sync;

/// Registers the routes of this module.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    link::routes(cfg);
    library::routes(cfg);
    stats::routes(cfg);
}
