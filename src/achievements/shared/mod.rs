//! Shared goals: the goals users list in the community, which others browse
//! and copy. They live with goals because a listing follows its source goal
//! (edited, deleted, unshared) in the same transaction.

pub mod model;
pub mod routes;
pub mod service;

pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    routes::routes(cfg);
}
