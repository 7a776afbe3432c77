//! Custom achievements: goals a user sets across their games, each with one
//! condition, evaluated after every sync.

pub mod condition;
pub mod form;
pub mod model;
pub mod routes;
pub mod service;

pub use condition::Condition;
pub use model::{evaluate, AchievementRow};

pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    routes::routes(cfg);
}
