//! Creating an account.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::audit::RequestMeta;
use crate::auth::email_address::normalise_email;
use crate::auth::sign_up;
use crate::error::{AppError, Outcome};
use crate::infra::password;
use crate::layout::PageContext;
use crate::ratelimit::{self, PerIp};
use crate::response::{render, render_status, see_other};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "auth/register.html")]
struct RegisterPage {
    ctx: PageContext,
    username: String,
    email: String,
    errors: FieldErrors,
}

/// Messages shown next to each field.
#[derive(Default)]
struct FieldErrors {
    username: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

impl FieldErrors {
    fn any(&self) -> bool {
        self.username.is_some() || self.email.is_some() || self.password.is_some()
    }
}

async fn show(ctx: PageContext) -> Result<HttpResponse, AppError> {
    render(&RegisterPage { ctx, username: String::new(), email: String::new(), errors: FieldErrors::default() })
}

#[derive(Deserialize)]
pub struct RegisterForm {
    username: String,
    email: String,
    password: SecretString,
    password_confirmation: SecretString,
}

/// A form with a single email address (reset, resend, email change).
/// 3-32 characters: letters, digits, `_` and `-`.
pub fn check_username(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if !(3..=32).contains(&len) {
        return Err("Use 3 to 32 characters.".into());
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err("Use only letters, digits, `_` and `-`.".into());
    }
    Ok(())
}

async fn submit(
    ctx: PageContext,
    form: web::Form<RegisterForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    ratelimit::per_ip(&state.redis, &state.settings, PerIp::Register, &meta).await?;

    let form = form.into_inner();
    let username = form.username.trim().to_owned();
    let mut errors = FieldErrors { username: check_username(&username).err(), ..Default::default() };
    let email = match normalise_email(&form.email) {
        Ok(e) => Some(e),
        Err(e) => {
            errors.email = Some(e);
            None
        }
    };
    errors.password = password::check_new_password(form.password.expose_secret(), &username, email.as_deref()).err();
    if errors.password.is_none() && form.password.expose_secret() != form.password_confirmation.expose_secret() {
        errors.password = Some("The two passwords do not match.".into());
    }
    if errors.any() {
        return render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &RegisterPage { ctx, username, email: form.email, errors },
        );
    }
    let email = email.expect("checked above");
    let created = sign_up::create_account(&state, &username, &email, form.password, &meta).await?;
    match created {
        Outcome::Refused(msg) => {
            let errors = FieldErrors { username: Some(msg.into()), ..Default::default() };
            render_status(StatusCode::UNPROCESSABLE_ENTITY, &RegisterPage { ctx, username, email: form.email, errors })
        }
        Outcome::Done(()) => {
            FlashMessage::success(format!("Welcome! We sent a link to {email}. Confirm your address, then sign in."))
                .send();
            Ok(see_other("/login"))
        }
    }
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/register").route(web::get().to(show)).route(web::post().to(submit)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_rules() {
        assert!(check_username("al").is_err());
        assert!(check_username("alice_b-2").is_ok());
        assert!(check_username("alice b").is_err());
        assert!(check_username("álice").is_err());
        assert!(check_username(&"a".repeat(33)).is_err());
    }

    #[test]
    fn emails_are_trimmed_lower_cased_and_checked() {
        assert_eq!(normalise_email("  Alice@Example.COM ").unwrap(), "alice@example.com");
        assert!(normalise_email("not-an-address").is_err());
    }
}
