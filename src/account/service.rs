//! The account's security use cases: re-authentication, two-factor
//! authentication, password and email changes. Each is one transaction
//! with its audit entry and its mail.

use std::time::Duration;

use diesel::prelude::*;
use secrecy::SecretString;

use crate::audit::{AuditEvent, RequestMeta};
use crate::auth::session::UserSession;
use crate::auth::totp;
use crate::crypto::Cipher;
use crate::db::{self, PgPool};
use crate::email::messages::{AccountDeleted, AddressInUse, EmailChangeNotice, PasswordChanged};
use crate::error::AppError;
use crate::infra::password::PasswordHasher;
use crate::models::user::User;
use crate::ratelimit::{self, PerIp};
use crate::state::AppState;

/// Password (and code, when enrolled) again. Shared by the re-authentication
/// page and by disabling 2FA.
async fn check_credentials(
    user: &User,
    password: SecretString,
    code: Option<String>,
    hasher: &PasswordHasher,
    cipher: &Cipher,
    pool: &PgPool,
) -> Result<bool, AppError> {
    if !hasher.verify(user.password_hash.clone(), password).await? {
        return Ok(false);
    }
    if !user.has_totp() {
        return Ok(true);
    }
    let Some(code) = code else { return Ok(false) };
    let (cipher, user_id) = (cipher.clone(), user.id);
    db::run(pool, move |conn| {
        conn.transaction(|conn| {
            let user = User::lock_for_update(conn, user_id)?;
            totp::verify_second_factor(conn, &cipher, &user, &code)
        })
    })
    .await
}

/// Checks the password (and code, with 2FA) again before sensitive changes;
/// a wrong answer counts toward the sign-in lockout. True when right.
pub async fn reauthenticate(
    state: &AppState,
    user: &User,
    password: SecretString,
    code: Option<String>,
    meta: &RequestMeta,
) -> Result<bool, AppError> {
    ratelimit::per_ip(&state.redis, &state.settings, PerIp::Login, meta).await?;
    let correct = check_credentials(user, password, code, &state.hasher, &state.cipher, &state.pool).await?;
    let (user_id, username, meta) = (user.id, user.username.clone(), meta.clone());
    let ok = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let ok = crate::auth::sign_in::account_password_check(conn, user_id, correct, &meta)?;
            let event = AuditEvent::new("auth", "reauth", &meta).actor(user_id).target_user(user_id, &username);
            let event = if ok { event } else { event.failed("wrong password or code") };
            event.record(conn)?;
            Ok(ok)
        })
    })
    .await?;
    state.jobs.notify();
    Ok(ok)
}

/// Stores a new secret waiting for its first code.
pub async fn start_two_factor(state: &AppState, user_id: i64) -> Result<(), AppError> {
    let cipher = state.cipher.clone();
    db::run(&state.pool, move |conn| Ok(totp::store_pending(conn, &cipher, user_id, &totp::new_secret())?)).await
}

/// Turns 2FA on with a code from the app; the fresh backup codes (to be
/// shown once) when the code is right.
pub async fn confirm_two_factor(
    state: &AppState,
    user: &User,
    code: String,
    meta: &RequestMeta,
) -> Result<Option<Vec<String>>, AppError> {
    let (cipher, u, meta) = (state.cipher.clone(), user.clone(), meta.clone());
    db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let codes = totp::confirm_enrolment(conn, &cipher, &u, &code)?;
            let event = AuditEvent::new("auth", "2fa_enable", &meta).actor(u.id).target_user(u.id, &u.username);
            match &codes {
                Some(_) => event.record(conn)?,
                None => event.failed("wrong code").record(conn)?,
            }
            Ok(codes)
        })
    })
    .await
}

/// Turns 2FA off after the password and a code; a wrong answer counts
/// toward the lockout. True when it is off.
pub async fn disable_two_factor(
    state: &AppState,
    user: &User,
    password: SecretString,
    code: String,
    meta: &RequestMeta,
) -> Result<bool, AppError> {
    ratelimit::per_ip(&state.redis, &state.settings, PerIp::Login, meta).await?;
    let correct = check_credentials(user, password, Some(code), &state.hasher, &state.cipher, &state.pool).await?;
    let (user, meta) = (user.clone(), meta.clone());
    let ok = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let ok = crate::auth::sign_in::account_password_check(conn, user.id, correct, &meta)?;
            let event =
                AuditEvent::new("auth", "2fa_disable", &meta).actor(user.id).target_user(user.id, &user.username);
            if ok {
                totp::disable(conn, user.id)?;
                event.record(conn)?;
            } else {
                event.failed("wrong password or code").record(conn)?;
            }
            Ok(ok)
        })
    })
    .await?;
    state.jobs.notify();
    Ok(ok)
}

/// Sets a new (checked) password, signs out every other session and tells
/// the owner by mail.
pub async fn change_password(
    state: &AppState,
    user: &User,
    session_id: &str,
    password: SecretString,
    meta: &RequestMeta,
) -> Result<(), AppError> {
    let hash = state.hasher.hash(password).await?;
    let (user, session_id, meta) = (user.clone(), session_id.to_owned(), meta.clone());
    db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            User::set_password_hash(conn, user.id, &hash)?;
            let ended = UserSession::revoke_all_except(conn, user.id, Some(&session_id))?;
            AuditEvent::new("auth", "password_change", &meta)
                .actor(user.id)
                .target_user(user.id, &user.username)
                .details(serde_json::json!({ "sessions_ended": ended }))
                .record(conn)?;
            if let Some(email) = &user.email {
                PasswordChanged { username: user.username.clone() }.queue(conn, email)?;
            }
            Ok(())
        })
    })
    .await?;
    state.jobs.notify();
    Ok(())
}

/// Mails a confirmation link to a new (normalised) address; the current
/// one stays until it is proved. An address another account uses gets the
/// same answer (its owner is told instead), so the form reveals nothing.
pub async fn request_email_change(
    state: &AppState,
    user: &User,
    new_email: &str,
    meta: &RequestMeta,
) -> Result<(), AppError> {
    // One notice an hour at most to an address's owner, however often
    // someone tries it.
    let notice_owner = ratelimit::may_notify_owner(&state.redis, &state.pool, new_email).await?;
    let (u, addr, base, meta) = (user.clone(), new_email.to_owned(), state.settings.clone(), meta.clone());
    db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            if let Some(owner) = User::find_by_email(conn, &addr)?.filter(|o| o.id != u.id) {
                // Answered exactly as for a free address: the page must not
                // tell anyone which addresses have accounts. The owner hears
                // of it instead.
                AuditEvent::new("auth", "email_change_request", &meta)
                    .actor(u.id)
                    .target_user(u.id, &u.username)
                    .failed("address used by another account")
                    .record(conn)?;
                if notice_owner {
                    AddressInUse { username: owner.username.clone(), attempt: "an email change".into() }
                        .queue(conn, &addr)?;
                }
                return Ok(());
            }
            // The current address stays in force until the new one is proved.
            User::set_pending_email(conn, u.id, &addr)?;
            crate::auth::mail_links::queue_verification(conn, &base, &u, &addr)?;
            if let Some(old) = &u.email {
                EmailChangeNotice { username: u.username.clone(), new_email: addr.to_owned() }.queue(conn, old)?;
            }
            AuditEvent::new("auth", "email_change_request", &meta)
                .actor(u.id)
                .target_user(u.id, &u.username)
                .record(conn)?;
            Ok(())
        })
    })
    .await?;
    state.jobs.notify();
    Ok(())
}

/// What deleting an account did.
pub struct Deleted {
    /// Shared achievements that stay in the community, by a deleted user.
    pub shared_kept: i64,
}

/// Deletes the user's own account with everything it owns (library,
/// unlocks, Steam link, goals, images, sessions), in one transaction with
/// its audit entry and the confirmation mail; shared achievements stay,
/// shown as by a deleted user. Image files nobody uses any more go after.
pub async fn delete_account(state: &AppState, user: &User, meta: &RequestMeta) -> Result<Deleted, AppError> {
    let (user, meta, storage) = (user.clone(), meta.clone(), state.storage.clone());
    let deleted = db::run(&state.pool, move |conn| {
        let deleted = conn.transaction(|conn| {
            let shared_kept = crate::achievements::shared::model::count_by_creator(conn, user.id)?;
            if let Some(email) = &user.email {
                AccountDeleted { username: user.username.clone(), shared_kept }.queue(conn, email)?;
            }
            User::delete(conn, user.id)?;
            // The entry outlives the account: no actor id to point at.
            AuditEvent::new("account", "delete_self", &meta).target_text(user.username.clone()).record(conn)?;
            Ok::<_, AppError>(Deleted { shared_kept })
        })?;
        crate::images::model::sweep_orphans(conn, storage.as_ref(), None);
        Ok(deleted)
    })
    .await?;
    state.jobs.notify();
    Ok(deleted)
}

/// Packs everything of the user's into a ZIP (see [`super::export`]).
pub async fn export_data(
    state: &AppState,
    user: &User,
    meta: &RequestMeta,
) -> Result<super::export::Archive, AppError> {
    // An export reads a whole account: a few an hour per user, and a few
    // at once per process, so parallel exports cannot take every database
    // connection and the memory with them.
    // The slot first: an export refused as busy does not use up one of the
    // user's exports for the hour.
    let _slot = match tokio::time::timeout(Duration::from_secs(10), state.exports.clone().acquire_owned()).await {
        Ok(Ok(slot)) => slot,
        _ => return Err(AppError::Unavailable(anyhow::anyhow!("every data export slot is busy"))),
    };
    let limit = crate::ratelimit::Limit { name: "export", max: EXPORTS_PER_HOUR, window: Duration::from_secs(3600) };
    crate::ratelimit::hit(&state.redis, limit, &user.id.to_string()).await?;
    let (user, meta, storage) = (user.clone(), meta.clone(), state.storage.clone());
    // Read on the background pool (a large account's export may take longer
    // than one page's statement limit) in one read-only snapshot, so the
    // library, unlocks and totals of the archive agree with each other.
    let partial = db::run(&state.background, move |conn| {
        let partial = conn
            .build_transaction()
            .repeatable_read()
            .read_only()
            .run(|conn| super::export::build_rows(conn, &user))?;
        AuditEvent::new("account", "export", &meta).actor(user.id).target_user(user.id, &user.username).record(conn)?;
        Ok(partial)
    })
    .await?;
    actix_web::web::block(move || super::export::add_images(partial, storage.as_ref()))
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("blocking pool: {e}")))?
}

/// Data exports one user may start in an hour.
pub const EXPORTS_PER_HOUR: u32 = 5;
