//! Accounts and security: passwords, sessions, CSRF, email tokens, and the
//! pages for registering, verifying, signing in and resetting.

pub mod csrf;
pub mod email_address;
pub mod extractors;
pub mod mail_links;
pub mod reauth;
pub mod redirect;
pub mod reset;
pub mod session;
pub mod session_store;
pub mod sign_in;
pub mod sign_in_routes;
pub mod sign_up;
pub mod sign_up_routes;
pub mod tokens;
pub mod totp;
pub mod two_factor;
pub mod verify;

/// Registers the routes of this module.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    sign_up_routes::routes(cfg);
    verify::routes(cfg);
    two_factor::routes(cfg);
    sign_in_routes::routes(cfg);
    reset::routes(cfg);
}
