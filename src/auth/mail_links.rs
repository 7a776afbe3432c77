//! Links sent by mail: "choose a new password" and "confirm this address".
//! Asking for either answers the same whatever the address, so the answer
//! never tells whether an account uses it; each ask is audited, and the
//! token, the queued mail and the audit entry are one transaction.

use chrono::{Duration, Utc};
use diesel::prelude::*;

use super::session::UserSession;
use super::tokens::{self, Purpose};
use crate::audit::{AuditEvent, RequestMeta};
use crate::db::{self, PgPool};
use crate::email::messages::{PasswordChanged, ResetPassword, VerifyEmail};
use crate::error::AppError;
use crate::models::user::User;
use crate::settings::Settings;

/// A new confirmation link is sent at most this often per account.
const RESEND_INTERVAL: Duration = Duration::seconds(60);

/// The two links a visitor can ask to be mailed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailedLink {
    /// To choose a new password (any account with this address).
    ResetPassword,
    /// To confirm the address again (only while it is unconfirmed).
    VerifyEmail,
}

impl MailedLink {
    fn audit_action(self) -> &'static str {
        match self {
            MailedLink::ResetPassword => "reset_request",
            MailedLink::VerifyEmail => "verify_resend",
        }
    }
}

/// Issues a confirmation token for `email` and queues the link to it, in
/// the caller's transaction. Registration, "send again" and email changes
/// all go through here.
pub fn queue_verification(
    conn: &mut PgConnection,
    settings: &Settings,
    user: &User,
    email: &str,
) -> Result<(), AppError> {
    let token = tokens::issue(conn, user.id, Purpose::VerifyEmail, Some(email))?;
    VerifyEmail { username: user.username.clone(), link: settings.public_url(&format!("/verify-email/{token}")) }
        .queue(conn, email)
}

/// Mails link `kind` to the account using `email`, if one does and may
/// have it now. `over_limit` says the caller's per-address limit is spent
/// (the mail is then not sent, and the audit says why).
pub async fn request(
    pool: &PgPool,
    settings: &Settings,
    kind: MailedLink,
    email: String,
    over_limit: bool,
    meta: &RequestMeta,
) -> Result<(), AppError> {
    let (settings, meta) = (settings.clone(), meta.clone());
    db::run(pool, move |conn| {
        conn.transaction(|conn| {
            let audit = AuditEvent::new("auth", kind.audit_action(), &meta);
            let user = User::find_by_email(conn, &email)?
                .filter(|u| kind == MailedLink::ResetPassword || u.email_verified_at.is_none());
            let Some(user) = user else {
                return Ok(audit.failed("no account waits for this link at that address").record(conn)?);
            };
            let audit = audit.target_user(user.id, &user.username);
            let refusal = match kind {
                _ if over_limit => Some("too many mails to this address this hour"),
                MailedLink::VerifyEmail
                    if tokens::last_issued(conn, user.id, Purpose::VerifyEmail)?
                        .is_some_and(|t| Utc::now() - t < RESEND_INTERVAL) =>
                {
                    Some("a link was sent less than a minute ago")
                }
                _ => None,
            };
            if let Some(why) = refusal {
                return Ok(audit.failed(why).record(conn)?);
            }
            match kind {
                MailedLink::ResetPassword => {
                    let token = tokens::issue(conn, user.id, Purpose::ResetPassword, None)?;
                    ResetPassword {
                        username: user.username.clone(),
                        link: settings.public_url(&format!("/password/reset/{token}")),
                    }
                    .queue(conn, &email)?;
                }
                MailedLink::VerifyEmail => queue_verification(conn, &settings, &user, &email)?,
            }
            Ok(audit.record(conn)?)
        })
    })
    .await
}

/// Whether `token` is a live link of this kind (the page showing its form).
pub async fn is_live(pool: &PgPool, kind: MailedLink, token: String) -> Result<bool, AppError> {
    db::run(pool, move |conn| Ok(tokens::peek(conn, &token, purpose(kind))?.is_some())).await
}

/// The account a live reset link belongs to.
pub async fn reset_owner(pool: &PgPool, token: String) -> Result<Option<User>, AppError> {
    db::run(pool, move |conn| match tokens::peek(conn, &token, Purpose::ResetPassword)? {
        Some(id) => Ok(User::find(conn, id)?),
        None => Ok(None),
    })
    .await
}

fn purpose(kind: MailedLink) -> Purpose {
    match kind {
        MailedLink::ResetPassword => Purpose::ResetPassword,
        MailedLink::VerifyEmail => Purpose::VerifyEmail,
    }
}

/// Spends reset link `token` and sets the new password `hash`: every
/// session ends, the owner is told by mail, and it is audited, all in one
/// transaction. `false` when the link is spent, expired or unknown (a
/// second submit of the same form finds it used).
pub async fn reset_password(pool: &PgPool, token: String, hash: String, meta: &RequestMeta) -> Result<bool, AppError> {
    let meta = meta.clone();
    db::run(pool, move |conn| {
        conn.transaction(|conn| {
            let Some(spent) = tokens::consume(conn, &token, Purpose::ResetPassword)? else { return Ok(false) };
            let user = User::find(conn, spent.user_id)?.ok_or(AppError::NotFound)?;
            User::reset_password(conn, &user, &hash)?;
            let ended = UserSession::revoke_all_except(conn, user.id, None)?;
            AuditEvent::new("auth", "password_reset", &meta)
                .target_user(user.id, &user.username)
                .details(serde_json::json!({ "sessions_ended": ended }))
                .record(conn)?;
            if let Some(email) = &user.email {
                PasswordChanged { username: user.username.clone() }.queue(conn, email)?;
            }
            Ok(true)
        })
    })
    .await
}

/// Spends confirmation link `token`: the address it was sent to becomes
/// the account's confirmed one. `false` when the link is spent, expired or
/// unknown; an address another account took since stays unconfirmed (and
/// the link unspent) with a message saying so.
pub async fn confirm_email(pool: &PgPool, token: String, meta: &RequestMeta) -> Result<bool, AppError> {
    let meta = meta.clone();
    db::run(pool, move |conn| {
        conn.transaction(|conn| {
            let Some(spent) = tokens::consume(conn, &token, Purpose::VerifyEmail)? else {
                AuditEvent::new("auth", "verify_email", &meta).failed("invalid or expired token").record(conn)?;
                return Ok(false);
            };
            let user = User::find(conn, spent.user_id)?.ok_or(AppError::NotFound)?;
            let email = spent.email.or(user.email.clone());
            User::confirm_email(conn, user.id, email.as_deref()).map_err(|e| match e {
                diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
                    AppError::BadRequest("That address is now used by another account.".into())
                }
                other => other.into(),
            })?;
            AuditEvent::new("auth", "verify_email", &meta)
                .actor(user.id)
                .target_user(user.id, &user.username)
                .record(conn)?;
            Ok(true)
        })
    })
    .await
}
