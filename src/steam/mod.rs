//! Steam: linked accounts, signing in through Steam, library sync and the
//! pages that show the result (the Web API client and the OpenID provider
//! are in `infra`).

pub mod conflicts;
pub mod demo;
pub mod fake;
pub mod instance_key;
pub mod library;
pub mod link;
pub mod link_routes;
pub mod model;
pub mod sign_in;
pub mod sign_in_routes;
pub mod stats;
pub mod sync;

/// Registers the routes of this module.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    link_routes::routes(cfg);
    sign_in_routes::routes(cfg);
    library::routes(cfg);
    stats::routes(cfg);
}
