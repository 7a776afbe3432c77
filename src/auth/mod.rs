//! Accounts and security: passwords, sessions, CSRF, email tokens, and the
//! pages for registering, verifying, signing in and resetting.

pub mod csrf;
pub mod legacy_hash;
pub mod login;
pub mod password;
pub mod register;
pub mod reset;
pub mod session;
pub mod tokens;
pub mod totp;
pub mod two_factor;
pub mod verify;

pub use session::{CurrentUser, MaybeUser};

/// Registers the routes of this module.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    register::routes(cfg);
    verify::routes(cfg);
    two_factor::routes(cfg);
    login::routes(cfg);
    reset::routes(cfg);
}

/// Only same-site paths are followed after sign-in; anything else (another
/// host, a scheme, `//evil`) goes to the account page.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => n.to_owned(),
        _ => "/account".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/account/sessions")), "/account/sessions");
        assert_eq!(safe_next(Some("//evil.example")), "/account");
        assert_eq!(safe_next(Some("https://evil.example")), "/account");
        assert_eq!(safe_next(Some("/\\evil.example")), "/account");
        assert_eq!(safe_next(None), "/account");
    }
}
