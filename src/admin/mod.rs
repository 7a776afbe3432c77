//! The admin console under `/admin`: only for admins who have enrolled 2FA.
//! Every action is a POST (CSRF-checked by the middleware), the sensitive
//! ones need a fresh re-authentication, and all are audited.

pub mod audit;
pub mod community;
pub mod dashboard;
pub mod jobs;
pub mod maintenance;
pub mod security;
pub mod users;

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};

use crate::auth::CurrentUser;
use crate::error::AppError;

/// A signed-in admin with 2FA. Anyone else gets a 404 (the console's
/// existence is not advertised); an admin without 2FA is told to enrol.
pub struct AdminUser(pub CurrentUser);

impl FromRequest for AdminUser {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let current = CurrentUser::from_request(req, payload);
        Box::pin(async move {
            let current = current.await?;
            if !current.user.is_admin() {
                return Err(AppError::NotFound);
            }
            if !current.user.has_totp() {
                return Err(AppError::Denied(
                    "The admin pages need two-factor authentication: enrol it on your security page first.".into(),
                ));
            }
            Ok(AdminUser(current))
        })
    }
}

/// Sensitive actions (role change, cache clear, maintenance mode, delete)
/// need the password again within ten minutes.
pub fn require_fresh_auth(req: &HttpRequest, back: &str) -> Result<(), AppError> {
    crate::auth::reauth::require_recent_auth(req, back)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    dashboard::routes(cfg);
    audit::routes(cfg);
    security::routes(cfg);
    jobs::routes(cfg);
    users::routes(cfg);
    community::routes(cfg);
    maintenance::routes(cfg);
}
