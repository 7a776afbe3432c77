//! The instance's own Steam Web API key (`instance_secrets`), lent to users
//! who gave none: set by an admin (stored encrypted, like users' keys) or
//! by `STEAM_API_KEY`; the admin's wins.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use secrecy::{ExposeSecret, SecretString};

use crate::crypto::Cipher;
use crate::error::AppError;
use crate::infra::steam_client::ApiKey;
use crate::schema::instance_secrets;
use crate::settings::Settings;

const NAME: &str = "steam_api_key";
const CONTEXT: &str = "instance:steam_api_key";

/// Where the key in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Admin,
    Environment,
}

/// What the admin page shows of the key (never the key).
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub source: Source,
    pub last4: String,
    pub updated_at: Option<DateTime<Utc>>,
}

fn last4(key: &str) -> String {
    key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect()
}

/// The key in force, decrypted, if there is one.
pub fn current(
    conn: &mut PgConnection,
    cipher: &Cipher,
    settings: &Settings,
) -> Result<Option<SecretString>, AppError> {
    let stored: Option<(Vec<u8>, String)> = instance_secrets::table
        .find(NAME)
        .select((instance_secrets::value_enc, instance_secrets::key_id))
        .first(conn)
        .optional()?;
    if let Some((enc, key_id)) = stored {
        let plain = cipher.decrypt(&key_id, &enc, CONTEXT).map_err(|e| AppError::Internal(e.into()))?;
        return Ok(Some(SecretString::from(String::from_utf8_lossy(&plain).into_owned())));
    }
    Ok(settings.steam_api_key.clone())
}

/// The key in force, lent to `user` (their calls count toward their
/// daily share), if there is one.
pub fn lent_to(
    conn: &mut PgConnection,
    cipher: &Cipher,
    settings: &Settings,
    user: i64,
) -> Result<Option<ApiKey>, AppError> {
    Ok(current(conn, cipher, settings)?.map(|secret| ApiKey { secret, shared_with: Some(user) }))
}

/// Which key is in force, for the admin page.
pub fn info(conn: &mut PgConnection, settings: &Settings) -> QueryResult<Option<KeyInfo>> {
    let stored: Option<(String, DateTime<Utc>)> = instance_secrets::table
        .find(NAME)
        .select((instance_secrets::last4, instance_secrets::updated_at))
        .first(conn)
        .optional()?;
    Ok(match stored {
        Some((last4, at)) => Some(KeyInfo { source: Source::Admin, last4, updated_at: Some(at) }),
        None => settings.steam_api_key.as_ref().map(|k| KeyInfo {
            source: Source::Environment,
            last4: last4(k.expose_secret()),
            updated_at: None,
        }),
    })
}

/// Stores an admin's key (already checked with Steam), encrypted.
pub fn set(conn: &mut PgConnection, cipher: &Cipher, key: &str, admin_id: Option<i64>) -> QueryResult<()> {
    let enc = cipher.encrypt(key.as_bytes(), CONTEXT);
    let values = (
        instance_secrets::value_enc.eq(&enc),
        instance_secrets::key_id.eq(cipher.key_id()),
        instance_secrets::last4.eq(last4(key)),
        instance_secrets::updated_by.eq(admin_id),
        instance_secrets::updated_at.eq(diesel::dsl::now),
    );
    diesel::insert_into(instance_secrets::table)
        .values((instance_secrets::name.eq(NAME), values.clone()))
        .on_conflict(instance_secrets::name)
        .do_update()
        .set(values)
        .execute(conn)
        .map(|_| ())
}

/// Stores `key` unless a key is stored already (the demo's seeding).
pub fn set_if_absent(conn: &mut PgConnection, cipher: &Cipher, key: &str) -> QueryResult<bool> {
    let stored: i64 = instance_secrets::table.filter(instance_secrets::name.eq(NAME)).count().get_result(conn)?;
    if stored > 0 {
        return Ok(false);
    }
    set(conn, cipher, key, None)?;
    Ok(true)
}

/// Removes the admin's key (`STEAM_API_KEY`, if set, applies again).
pub fn clear(conn: &mut PgConnection) -> QueryResult<bool> {
    diesel::delete(instance_secrets::table.find(NAME)).execute(conn).map(|n| n > 0)
}

/// Re-encrypts the stored key under `new` when it is under `old`'s key id
/// (`questline rotate-keys`); whether it did.
pub fn rotate(conn: &mut PgConnection, old: &Cipher, new: &Cipher) -> anyhow::Result<bool> {
    let stored: Option<(Vec<u8>, String)> = instance_secrets::table
        .find(NAME)
        .filter(instance_secrets::key_id.eq(old.key_id()))
        .select((instance_secrets::value_enc, instance_secrets::key_id))
        .for_update()
        .first(conn)
        .optional()?;
    let Some((enc, key_id)) = stored else { return Ok(false) };
    let plain = old.decrypt(&key_id, &enc, CONTEXT)?;
    diesel::update(instance_secrets::table.find(NAME))
        .set((instance_secrets::value_enc.eq(new.encrypt(&plain, CONTEXT)), instance_secrets::key_id.eq(new.key_id())))
        .execute(conn)?;
    Ok(true)
}
