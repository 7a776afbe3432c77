//! The community: achievements users share, browse and import.

pub mod model;
pub mod routes;
pub mod service;

pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    routes::routes(cfg);
}
