//! TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of drift)
//! and single-use backup codes.

use chrono::Utc;
use diesel::prelude::*;
use rand::RngCore;
use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, TOTP};

use crate::crypto::Cipher;
use crate::error::AppError;
use crate::models::user::User;
use crate::schema::backup_codes;

const STEP_SECS: u64 = 30;
/// Backup codes made at enrolment.
pub const BACKUP_CODE_COUNT: usize = 10;

fn totp(secret: Vec<u8>, account: &str) -> Result<TOTP, AppError> {
    TOTP::new(Algorithm::SHA1, 6, 1, STEP_SECS, secret, Some("Questline".into()), account.to_owned())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("totp: {e}")))
}

/// The authenticated-data context binding a ciphertext to its user.
fn context(user_id: i64) -> String {
    format!("totp:{user_id}")
}

/// A fresh 160-bit secret (RFC 4226's recommendation).
pub fn new_secret() -> Vec<u8> {
    let mut s = vec![0u8; 20];
    rand::rng().fill_bytes(&mut s);
    s
}

/// What the enrolment page shows: a QR code and the secret to type.
pub struct Enrolment {
    pub qr_png_base64: String,
    pub secret_base32: String,
}

/// Stores `secret` as the user's pending (unconfirmed) secret.
pub fn store_pending(conn: &mut PgConnection, cipher: &Cipher, user_id: i64, secret: &[u8]) -> QueryResult<()> {
    User::store_pending_totp(conn, user_id, cipher.encrypt(secret, &context(user_id)), cipher.key_id())
}

fn decrypt(
    cipher: &Cipher,
    user_id: i64,
    key_id: Option<&str>,
    data: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, AppError> {
    match (key_id, data) {
        (Some(k), Some(d)) => {
            cipher.decrypt(k, d, &context(user_id)).map(Some).map_err(|e| AppError::Internal(e.into()))
        }
        _ => Ok(None),
    }
}

/// The QR code and text form of the user's pending secret.
pub fn enrolment(cipher: &Cipher, user: &User) -> Result<Option<Enrolment>, AppError> {
    let Some(secret) = decrypt(cipher, user.id, user.totp_pending_key_id.as_deref(), user.totp_pending_enc.as_deref())?
    else {
        return Ok(None);
    };
    let t = totp(secret, &user.username)?;
    Ok(Some(Enrolment {
        qr_png_base64: t.get_qr_base64().map_err(|e| AppError::Internal(anyhow::anyhow!("qr: {e}")))?,
        secret_base32: t.get_secret_base32(),
    }))
}

/// The 30-second step `code` is valid for (now, or one step either side).
fn matching_step(secret: Vec<u8>, account: &str, code: &str, now: u64) -> Result<Option<i64>, AppError> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    let t = totp(secret, account)?;
    for time in [now.saturating_sub(STEP_SECS), now, now + STEP_SECS] {
        if t.generate(time) == code {
            return Ok(Some((time / STEP_SECS) as i64));
        }
    }
    Ok(None)
}

fn unix_now() -> u64 {
    Utc::now().timestamp().max(0) as u64
}

/// Confirms enrolment with a code from the app; on success the pending
/// secret becomes the active one and fresh backup codes are returned (to be
/// shown once).
pub fn confirm_enrolment(
    conn: &mut PgConnection,
    cipher: &Cipher,
    user: &User,
    code: &str,
) -> Result<Option<Vec<String>>, AppError> {
    let Some(secret) = decrypt(cipher, user.id, user.totp_pending_key_id.as_deref(), user.totp_pending_enc.as_deref())?
    else {
        return Ok(None);
    };
    let Some(step) = matching_step(secret.clone(), &user.username, code, unix_now())? else { return Ok(None) };
    User::enable_totp(conn, user.id, cipher.encrypt(&secret, &context(user.id)), cipher.key_id(), step)?;
    Ok(Some(replace_backup_codes(conn, user.id)?))
}

/// Checks a sign-in code: a TOTP code not used before, or an unused backup
/// code. Call inside a transaction holding the user's row lock, so one code
/// cannot win twice in a race. True when accepted (and now spent).
pub fn verify_second_factor(
    conn: &mut PgConnection,
    cipher: &Cipher,
    user: &User,
    code: &str,
) -> Result<bool, AppError> {
    let Some(secret) = decrypt(cipher, user.id, user.totp_key_id.as_deref(), user.totp_secret_enc.as_deref())? else {
        return Ok(false);
    };
    if let Some(step) = matching_step(secret, &user.username, code, unix_now())? {
        if user.totp_last_step.is_some_and(|last| step <= last) {
            return Ok(false); // replayed, or older than one already used
        }
        User::set_totp_step(conn, user.id, step)?;
        return Ok(true);
    }
    use_backup_code(conn, user.id, code)
}

fn hash_code(code: &str) -> Vec<u8> {
    let normalised: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_lowercase();
    Sha256::digest(normalised.as_bytes()).to_vec()
}

fn use_backup_code(conn: &mut PgConnection, user_id: i64, code: &str) -> Result<bool, AppError> {
    let n = diesel::update(
        backup_codes::table
            .filter(backup_codes::user_id.eq(user_id))
            .filter(backup_codes::code_hash.eq(hash_code(code)))
            .filter(backup_codes::used_at.is_null()),
    )
    .set(backup_codes::used_at.eq(Utc::now()))
    .execute(conn)?;
    Ok(n == 1)
}

/// Letters and digits nobody confuses when reading a printout: no l/1/i,
/// no 0/o.
const CODE_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// One backup code: three groups of four from [`CODE_ALPHABET`] (about 59
/// random bits).
fn new_backup_code() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let chars: Vec<char> = (0..12).map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char).collect();
    let groups: Vec<String> = chars.chunks(4).map(|c| c.iter().collect()).collect();
    groups.join("-")
}

/// Replaces all backup codes with fresh ones (80 random bits each, so a
/// plain SHA-256 is enough to store them) and returns them for display.
pub fn replace_backup_codes(conn: &mut PgConnection, user_id: i64) -> QueryResult<Vec<String>> {
    diesel::delete(backup_codes::table.filter(backup_codes::user_id.eq(user_id))).execute(conn)?;
    let codes: Vec<String> = (0..BACKUP_CODE_COUNT).map(|_| new_backup_code()).collect();
    let rows: Vec<_> =
        codes.iter().map(|c| (backup_codes::user_id.eq(user_id), backup_codes::code_hash.eq(hash_code(c)))).collect();
    diesel::insert_into(backup_codes::table).values(&rows).execute(conn)?;
    Ok(codes)
}

/// Turns 2FA off and drops the backup codes.
pub fn disable(conn: &mut PgConnection, user_id: i64) -> QueryResult<()> {
    User::disable_totp(conn, user_id)?;
    diesel::delete(backup_codes::table.filter(backup_codes::user_id.eq(user_id))).execute(conn)?;
    Ok(())
}

/// Checks a code against the active secret without spending it (for
/// re-authentication and disabling, which also accept a fresh code).
pub fn code_is_current(cipher: &Cipher, user: &User, code: &str) -> Result<bool, AppError> {
    let Some(secret) = decrypt(cipher, user.id, user.totp_key_id.as_deref(), user.totp_secret_enc.as_deref())? else {
        return Ok(false);
    };
    Ok(matching_step(secret, &user.username, code, unix_now())?
        .is_some_and(|s| user.totp_last_step.is_none_or(|l| s > l)))
}

#[cfg(test)]
mod code_tests {
    #[test]
    fn backup_codes_avoid_characters_that_look_alike() {
        for _ in 0..200 {
            let code = super::new_backup_code();
            assert_eq!(code.len(), 14, "{code}");
            assert!(!code.contains(['l', '1', '0', 'o', 'i']), "{code}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_matches_its_step_and_one_step_either_side_only() {
        let secret = vec![1u8; 20];
        let t = totp(secret.clone(), "a").unwrap();
        let now = 1_700_000_000u64;
        let code = t.generate(now);
        assert_eq!(matching_step(secret.clone(), "a", &code, now).unwrap(), Some((now / 30) as i64));
        assert!(matching_step(secret.clone(), "a", &code, now + 30).unwrap().is_some());
        assert!(matching_step(secret.clone(), "a", &code, now + 95).unwrap().is_none());
        assert!(matching_step(secret, "a", "12a456", now).unwrap().is_none());
    }

    #[test]
    fn backup_codes_are_normalised_before_hashing() {
        assert_eq!(hash_code("abcde-fghij"), hash_code(" ABCDE FGHIJ "));
    }
}
