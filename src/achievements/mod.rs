//! Custom achievements: goals a user sets across their games, each with one
//! condition, evaluated after every sync.

pub mod condition;
pub mod form;
pub mod goal_file;
pub mod model;
pub mod routes;
pub mod service;
pub mod shared;
pub mod transfer;

pub use condition::Condition;
pub use model::{evaluate, AchievementRow};

pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    // Before `/achievements/{id}`: "import" is no id.
    transfer::routes(cfg);
    routes::routes(cfg);
}
