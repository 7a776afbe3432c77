//! `questline rotate-keys`: re-encrypts every secret stored under an old
//! master key with the current one.

use diesel::prelude::*;

use crate::crypto::Cipher;
use crate::models::user::User;
use crate::steam::model::SteamAccount;

/// How many values were re-encrypted, by kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rotated {
    pub steam_keys: usize,
    pub totp_secrets: usize,
    /// The instance's Steam key, when an admin stored one.
    pub instance_keys: usize,
}

/// Re-encrypts every value whose key id is `old`'s under `new`, in one
/// transaction: either all move or none do. Values already under `new` are
/// left alone, so a re-run is harmless.
pub fn rotate(conn: &mut PgConnection, old: &Cipher, new: &Cipher) -> anyhow::Result<Rotated> {
    conn.transaction(|conn| {
        let mut out = Rotated::default();
        for (user_id, enc) in SteamAccount::keys_under(conn, old.key_id())? {
            let context = format!("steam_key:{user_id}");
            let plain = old.decrypt(old.key_id(), &enc, &context)?;
            SteamAccount::set_api_key_ciphertext(conn, user_id, new.encrypt(&plain, &context), new.key_id())?;
            out.steam_keys += 1;
        }
        if crate::steam::instance_key::rotate(conn, old, new)? {
            out.instance_keys += 1;
        }
        for (user_id, secret, secret_kid, pending, pending_kid) in User::totp_secrets_under_key(conn, old.key_id())? {
            let context = format!("totp:{user_id}");
            if let (Some(enc), Some(kid)) = (secret, secret_kid.filter(|k| k == old.key_id())) {
                let plain = old.decrypt(&kid, &enc, &context)?;
                User::set_totp_secret(conn, user_id, new.encrypt(&plain, &context), new.key_id())?;
                out.totp_secrets += 1;
            }
            if let (Some(enc), Some(kid)) = (pending, pending_kid.filter(|k| k == old.key_id())) {
                let plain = old.decrypt(&kid, &enc, &context)?;
                User::store_pending_totp(conn, user_id, new.encrypt(&plain, &context), new.key_id())?;
            }
        }
        Ok(out)
    })
}
