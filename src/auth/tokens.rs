//! Single-use email tokens (verification, password reset). 256 random bits
//! go in the link; only their SHA-256 is stored.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::schema::email_tokens;

/// What a token proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
        }
    }

    /// How long a link stays valid.
    pub fn lifetime(self) -> Duration {
        match self {
            Purpose::VerifyEmail => Duration::hours(24),
            Purpose::ResetPassword => Duration::hours(1),
        }
    }
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A token that was valid and is now spent.
#[derive(Debug, Clone, Queryable)]
pub struct ConsumedToken {
    pub user_id: i64,
    pub email: Option<String>,
}

/// Creates a token and returns its plain text for the link. Earlier unused
/// tokens of the same purpose stop working: only the newest email counts.
pub fn issue(conn: &mut PgConnection, user_id: i64, purpose: Purpose, email: Option<&str>) -> QueryResult<String> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let now = Utc::now();
    diesel::update(
        email_tokens::table
            .filter(email_tokens::user_id.eq(user_id))
            .filter(email_tokens::purpose.eq(purpose.as_str()))
            .filter(email_tokens::used_at.is_null()),
    )
    .set(email_tokens::used_at.eq(now))
    .execute(conn)?;
    diesel::insert_into(email_tokens::table)
        .values((
            email_tokens::user_id.eq(user_id),
            email_tokens::purpose.eq(purpose.as_str()),
            email_tokens::token_hash.eq(hash(&token)),
            email_tokens::email.eq(email),
            email_tokens::expires_at.eq(now + purpose.lifetime()),
        ))
        .execute(conn)?;
    Ok(token)
}

/// Spends a token in one statement, so two concurrent uses cannot both win.
pub fn consume(conn: &mut PgConnection, token: &str, purpose: Purpose) -> QueryResult<Option<ConsumedToken>> {
    diesel::update(
        email_tokens::table
            .filter(email_tokens::token_hash.eq(hash(token)))
            .filter(email_tokens::purpose.eq(purpose.as_str()))
            .filter(email_tokens::used_at.is_null())
            .filter(email_tokens::expires_at.gt(Utc::now())),
    )
    .set(email_tokens::used_at.eq(Utc::now()))
    .returning((email_tokens::user_id, email_tokens::email))
    .get_result(conn)
    .optional()
}

/// Looks a token up without spending it (to show the reset form).
pub fn peek(conn: &mut PgConnection, token: &str, purpose: Purpose) -> QueryResult<Option<i64>> {
    email_tokens::table
        .filter(email_tokens::token_hash.eq(hash(token)))
        .filter(email_tokens::purpose.eq(purpose.as_str()))
        .filter(email_tokens::used_at.is_null())
        .filter(email_tokens::expires_at.gt(Utc::now()))
        .select(email_tokens::user_id)
        .first(conn)
        .optional()
}

/// When the newest token of this purpose was issued, for "send again" throttling.
pub fn last_issued(conn: &mut PgConnection, user_id: i64, purpose: Purpose) -> QueryResult<Option<DateTime<Utc>>> {
    email_tokens::table
        .filter(email_tokens::user_id.eq(user_id))
        .filter(email_tokens::purpose.eq(purpose.as_str()))
        .select(diesel::dsl::max(email_tokens::created_at))
        .first(conn)
}
