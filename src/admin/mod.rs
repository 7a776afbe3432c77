//! The admin console under `/admin`: only for admins who have enrolled 2FA.
//! Every action is a POST (CSRF-checked by the middleware), the sensitive
//! ones need a fresh re-authentication, and all are audited.

pub mod audit;
pub mod community;
pub mod dashboard;
pub mod jobs;
pub mod maintenance;
pub mod rarity;
pub mod security;
pub mod service;
pub mod steam;
pub mod users;

pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    dashboard::routes(cfg);
    audit::routes(cfg);
    security::routes(cfg);
    jobs::routes(cfg);
    users::routes(cfg);
    community::routes(cfg);
    maintenance::routes(cfg);
    rarity::routes(cfg);
    steam::routes(cfg);
}
