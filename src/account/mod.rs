//! The signed-in user's own pages: overview, sessions, sign-in activity.

pub mod activity;
pub mod data;
pub mod export;
pub mod overview;
pub mod security;
pub mod service;
pub mod sessions;
pub mod view;

/// Registers the routes of this module.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    overview::routes(cfg);
    sessions::routes(cfg);
    activity::routes(cfg);
    security::routes(cfg);
    data::routes(cfg);
}
