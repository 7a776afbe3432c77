//! Command-line administration: `questline create-admin`.

use diesel::prelude::*;

use crate::audit::{AuditEvent, RequestMeta};
use crate::auth::email_address::normalise_email;
use crate::auth::sign_up_routes::check_username;
use crate::infra::password;
use crate::models::user::{NewUser, Role, User};

/// What `create_admin` did.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminOutcome {
    Created,
    /// The account existed and was made an admin (its password is unchanged).
    Promoted,
    AlreadyAdmin,
}

/// Creates a verified admin account, or promotes an existing one. Admin
/// pages also require 2FA, which the admin enrols after signing in.
pub fn create_admin(
    conn: &mut PgConnection,
    username: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<AdminOutcome> {
    let meta = RequestMeta { ip: None, user_agent: Some("questline create-admin".into()) };
    if let Some(existing) = User::find_by_login(conn, username)? {
        if existing.is_admin() {
            return Ok(AdminOutcome::AlreadyAdmin);
        }
        conn.transaction(|conn| {
            User::set_role(conn, existing.id, Role::Admin)?;
            AuditEvent::new("admin", "role_change", &meta)
                .target_user(existing.id, &existing.username)
                .details(serde_json::json!({ "from": "user", "to": "admin", "via": "cli" }))
                .record(conn)
        })?;
        return Ok(AdminOutcome::Promoted);
    }
    check_username(username).map_err(|e| anyhow::anyhow!("username: {e}"))?;
    let email = normalise_email(email).map_err(|e| anyhow::anyhow!("email: {e}"))?;
    password::check_new_password(password, username, Some(&email)).map_err(|e| anyhow::anyhow!("password: {e}"))?;
    let hash = password::hash_now(password)?;
    conn.transaction(|conn| -> anyhow::Result<()> {
        let user = User::insert(
            conn,
            &NewUser { username, email: Some(&email), password_hash: Some(&hash), role: Role::Admin },
        )?;
        User::mark_email_verified(conn, user.id)?;
        AuditEvent::new("admin", "create_admin", &meta)
            .target_user(user.id, &user.username)
            .details(serde_json::json!({ "via": "cli" }))
            .record(conn)?;
        Ok(())
    })?;
    Ok(AdminOutcome::Created)
}
