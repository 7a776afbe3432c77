//! What pages show of an account. Templates get this, never the `User` row,
//! which carries the password hash and the encrypted TOTP secrets.

use chrono::{DateTime, Utc};

use crate::models::user::{Role, Status, User};

/// An account as its own pages and the admin's show it.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub email_verified_at: Option<DateTime<Utc>>,
    /// An address waiting for its confirmation link.
    pub pending_email: Option<String>,
    pub role: Role,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    /// Its name in the legacy app, when it was imported.
    pub legacy_username: Option<String>,
    pub totp_enabled_at: Option<DateTime<Utc>>,
}

impl AccountView {
    /// Whether sign-in asks for a second factor.
    pub fn has_totp(&self) -> bool {
        self.totp_enabled_at.is_some()
    }
}

impl From<&User> for AccountView {
    fn from(u: &User) -> Self {
        AccountView {
            id: u.id,
            username: u.username.clone(),
            email: u.email.clone(),
            email_verified_at: u.email_verified_at,
            pending_email: u.pending_email.clone(),
            role: u.role,
            status: u.status,
            created_at: u.created_at,
            legacy_username: u.legacy_username.clone(),
            totp_enabled_at: u.totp_enabled_at,
        }
    }
}
