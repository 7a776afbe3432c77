//! The admin console's use cases: acting on accounts, moderating shared
//! goals and emptying the page cache. Each runs in one transaction with its
//! audit entry, so an action is never done without its record.

use diesel::prelude::*;

use crate::audit::{AuditEvent, RequestMeta};
use crate::auth::session::UserSession;
use crate::db::{self, PgPool};
use crate::error::AppError;
use crate::models::user::{Role, User};

/// What an admin can do to one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountAction {
    Lock,
    Unlock,
    Verify,
    Reset2fa,
    EndSessions,
    MakeAdmin,
    MakeUser,
}

impl AccountAction {
    const ALL: [AccountAction; 7] = [
        AccountAction::Lock,
        AccountAction::Unlock,
        AccountAction::Verify,
        AccountAction::Reset2fa,
        AccountAction::EndSessions,
        AccountAction::MakeAdmin,
        AccountAction::MakeUser,
    ];

    /// The action named in a URL (`reset-2fa`).
    pub fn parse(s: &str) -> Option<AccountAction> {
        Self::ALL.into_iter().find(|a| a.slug() == s)
    }
    /// Its name in URLs.
    pub fn slug(self) -> &'static str {
        match self {
            AccountAction::Lock => "lock",
            AccountAction::Unlock => "unlock",
            AccountAction::Verify => "verify",
            AccountAction::Reset2fa => "reset-2fa",
            AccountAction::EndSessions => "end-sessions",
            AccountAction::MakeAdmin => "make-admin",
            AccountAction::MakeUser => "make-user",
        }
    }
    /// The audit log's name for it.
    pub fn name(self) -> &'static str {
        match self {
            AccountAction::Lock => "lock",
            AccountAction::Unlock => "unlock",
            AccountAction::Verify => "mark_verified",
            AccountAction::Reset2fa => "reset_2fa",
            AccountAction::EndSessions => "end_sessions",
            AccountAction::MakeAdmin | AccountAction::MakeUser => "change_role",
        }
    }
    /// The button that asks for it.
    pub fn label(self) -> &'static str {
        match self {
            AccountAction::Lock => "Lock the account",
            AccountAction::Unlock => "Unlock the account",
            AccountAction::Verify => "Mark the email as verified",
            AccountAction::Reset2fa => "Reset two-factor authentication",
            AccountAction::EndSessions => "End all sessions",
            AccountAction::MakeUser => "Make a regular user",
            AccountAction::MakeAdmin => "Make an admin",
        }
    }
    /// Whether its button is drawn as dangerous.
    pub fn dangerous(self) -> bool {
        matches!(
            self,
            AccountAction::Lock | AccountAction::Reset2fa | AccountAction::EndSessions | AccountAction::MakeUser
        )
    }
    /// What it does, as the confirmation page says it.
    pub fn effect(self) -> &'static str {
        match self {
            AccountAction::Lock => {
                "They are signed out everywhere and cannot sign in until an admin unlocks the account."
            }
            AccountAction::Unlock => "They can sign in again; failed sign-in counts are cleared.",
            AccountAction::Verify => "Their current address counts as confirmed.",
            AccountAction::Reset2fa => {
                "Two-factor authentication is turned off and its backup codes deleted; they can enrol again."
            }
            AccountAction::EndSessions => "Every browser signed in to the account is signed out.",
            AccountAction::MakeUser => "They lose access to the admin console.",
            AccountAction::MakeAdmin => "They get the admin console (after enrolling two-factor authentication).",
        }
    }
    /// Changes who may administer: needs a fresh password.
    pub fn sensitive(self) -> bool {
        matches!(self, AccountAction::MakeAdmin | AccountAction::MakeUser)
    }
}

fn apply(conn: &mut PgConnection, action: AccountAction, user: &User) -> QueryResult<String> {
    Ok(match action {
        AccountAction::Lock => {
            User::set_locked(conn, user.id)?;
            UserSession::revoke_all_except(conn, user.id, None)?;
            format!("{} is locked and signed out everywhere.", user.username)
        }
        AccountAction::Unlock => {
            User::unlock(conn, user.id)?;
            format!("{} is unlocked.", user.username)
        }
        AccountAction::Verify => {
            User::mark_email_verified(conn, user.id)?;
            format!("{}'s email address is marked as verified.", user.username)
        }
        AccountAction::Reset2fa => {
            crate::auth::totp::disable(conn, user.id)?;
            format!("Two-factor authentication is off for {}; they can enrol again.", user.username)
        }
        AccountAction::EndSessions => {
            let n = UserSession::revoke_all_except(conn, user.id, None)?;
            format!("Ended {n} session(s) of {}.", user.username)
        }
        AccountAction::MakeAdmin | AccountAction::MakeUser => {
            let role = if action == AccountAction::MakeAdmin { Role::Admin } else { Role::User };
            User::set_role(conn, user.id, role)?;
            format!("{} is now {}.", user.username, role.as_str())
        }
    })
}

/// Applies `action` to `user` on behalf of admin `actor` and audits it;
/// returns what to tell the admin.
pub async fn act_on_account(
    pool: &PgPool,
    actor: i64,
    user: User,
    action: AccountAction,
    meta: &RequestMeta,
) -> Result<String, AppError> {
    let meta = meta.clone();
    db::run(pool, move |conn| {
        conn.transaction(|conn| {
            let message = apply(conn, action, &user)?;
            AuditEvent::new("admin", action.name(), &meta)
                .actor(actor)
                .target_user(user.id, &user.username)
                .details(serde_json::json!({ "action": action.slug() }))
                .record(conn)?;
            Ok(message)
        })
    })
    .await
}

/// Deletes `user` with everything it owns (shared goals stay, shown as by
/// a deleted user), audits it, then removes images nobody uses any more.
pub async fn delete_account(
    pool: &PgPool,
    storage: &crate::infra::storage::SharedStorage,
    actor: i64,
    user: User,
    meta: &RequestMeta,
) -> Result<(), AppError> {
    let (meta, storage) = (meta.clone(), storage.clone());
    db::run(pool, move |conn| {
        conn.transaction(|conn| {
            User::delete(conn, user.id)?;
            AuditEvent::new("admin", "delete_user", &meta)
                .actor(actor)
                .target_user(user.id, &user.username)
                .record(conn)
        })?;
        crate::images::model::sweep_orphans(conn, storage.as_ref(), None);
        Ok(())
    })
    .await
}

/// Hides shared goal `id` from the community (or restores it) and drops
/// every cached page at once: hidden means hidden now, not within the
/// cache's minute. `NotFound` when there is no such shared goal.
pub async fn set_shared_hidden(
    pool: &PgPool,
    actor: i64,
    id: i64,
    hide: bool,
    meta: &RequestMeta,
) -> Result<(), AppError> {
    let meta = meta.clone();
    db::run(pool, move |conn| {
        conn.transaction(|conn| {
            if !crate::achievements::shared::model::set_hidden(conn, id, hide.then_some(actor))? {
                return Err(AppError::NotFound);
            }
            crate::rarity::model::clear_cached_pages(conn)?;
            AuditEvent::new("admin", if hide { "hide_shared" } else { "restore_shared" }, &meta)
                .actor(actor)
                .target_text(id.to_string())
                .record(conn)?;
            Ok(())
        })
    })
    .await
}

/// Empties the page cache on every instance (the epoch every request reads
/// moves) and audits it.
pub async fn clear_cached_pages(pool: &PgPool, actor: i64, meta: &RequestMeta) -> Result<(), AppError> {
    let meta = meta.clone();
    db::run(pool, move |conn| {
        conn.transaction(|conn| {
            crate::rarity::model::clear_cached_pages(conn)?;
            AuditEvent::new("admin", "clear_cache", &meta).actor(actor).record(conn)
        })
        .map_err(AppError::from)
    })
    .await
}
