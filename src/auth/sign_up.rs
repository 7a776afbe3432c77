//! Creating an account: the use case behind the registration form.

use diesel::prelude::*;
use secrecy::SecretString;

use crate::audit::{AuditEvent, RequestMeta};
use crate::db;
use crate::error::{AppError, Outcome};
use crate::models::user::{NewUser, Role, User};
use crate::state::AppState;

/// Creates an account for a checked username, address and password, and
/// mails the confirmation link. An address that already has an account
/// gets the same answer (its owner is told instead, at most once an hour),
/// so the form reveals nothing. `Refused(message)` when the username is taken.
pub async fn create_account(
    state: &AppState,
    username: &str,
    email: &str,
    password: SecretString,
    meta: &RequestMeta,
) -> Result<Outcome<(), &'static str>, AppError> {
    let hash = state.hasher.hash(password).await?;
    let notice_owner = crate::ratelimit::may_notify_owner(&state.redis, &state.pool, email).await?;

    let (name, addr, base, meta) = (username.to_owned(), email.to_owned(), state.settings.clone(), meta.clone());
    let created = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            if User::username_taken(conn, &name)? {
                return Ok(Outcome::Refused("That username is taken."));
            }
            if let Some(owner) = User::find_by_email(conn, &addr)? {
                // Answer as for a new account: telling strangers which
                // addresses have accounts would help them target those.
                AuditEvent::new("auth", "register", &meta)
                    .target_text(name.clone())
                    .failed("email already registered")
                    .record(conn)?;
                if notice_owner {
                    crate::email::messages::AddressInUse {
                        username: owner.username.clone(),
                        attempt: "a new account".into(),
                    }
                    .queue(conn, &addr)?;
                }
                return Ok(Outcome::Done(()));
            }
            let user = User::insert(
                conn,
                &NewUser { username: &name, email: Some(&addr), password_hash: Some(&hash), role: Role::User },
            )?;
            super::mail_links::queue_verification(conn, &base, &user, &addr)?;
            AuditEvent::new("auth", "register", &meta)
                .actor(user.id)
                .target_user(user.id, &user.username)
                .record(conn)?;
            Ok(Outcome::Done(()))
        })
    })
    .await?;
    if matches!(created, Outcome::Done(())) {
        state.jobs.notify();
    }
    Ok(created)
}
