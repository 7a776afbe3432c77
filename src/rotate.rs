//! `questline rotate-keys`: re-encrypts every secret stored under an old
//! master key with the current one.

use diesel::prelude::*;

use crate::crypto::Cipher;
use crate::schema::{steam_accounts, users};

/// A user's id with their TOTP secret and pending secret, each with its key id.
type TotpRow = (i64, Option<Vec<u8>>, Option<String>, Option<Vec<u8>>, Option<String>);

/// How many values were re-encrypted, by kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rotated {
    pub steam_keys: usize,
    pub totp_secrets: usize,
}

/// Re-encrypts every value whose key id is `old`'s under `new`, in one
/// transaction: either all move or none do. Values already under `new` are
/// left alone, so a re-run is harmless.
pub fn rotate(conn: &mut PgConnection, old: &Cipher, new: &Cipher) -> anyhow::Result<Rotated> {
    conn.transaction(|conn| {
        let mut out = Rotated::default();
        let rows: Vec<(i64, Vec<u8>)> = steam_accounts::table
            .filter(steam_accounts::api_key_key_id.eq(old.key_id()))
            .select((steam_accounts::user_id, steam_accounts::api_key_enc.assume_not_null()))
            .for_update()
            .load(conn)?;
        for (user_id, enc) in rows {
            let context = format!("steam_key:{user_id}");
            let plain = old.decrypt(old.key_id(), &enc, &context)?;
            diesel::update(steam_accounts::table.find(user_id))
                .set((
                    steam_accounts::api_key_enc.eq(new.encrypt(&plain, &context)),
                    steam_accounts::api_key_key_id.eq(new.key_id()),
                ))
                .execute(conn)?;
            out.steam_keys += 1;
        }
        let rows: Vec<TotpRow> = users::table
            .filter(users::totp_key_id.eq(old.key_id()).or(users::totp_pending_key_id.eq(old.key_id())))
            .select((
                users::id,
                users::totp_secret_enc,
                users::totp_key_id,
                users::totp_pending_enc,
                users::totp_pending_key_id,
            ))
            .for_update()
            .load(conn)?;
        for (user_id, secret, secret_kid, pending, pending_kid) in rows {
            let context = format!("totp:{user_id}");
            if let (Some(enc), Some(kid)) = (secret, secret_kid.filter(|k| k == old.key_id())) {
                let plain = old.decrypt(&kid, &enc, &context)?;
                diesel::update(users::table.find(user_id))
                    .set((
                        users::totp_secret_enc.eq(new.encrypt(&plain, &context)),
                        users::totp_key_id.eq(new.key_id()),
                    ))
                    .execute(conn)?;
                out.totp_secrets += 1;
            }
            if let (Some(enc), Some(kid)) = (pending, pending_kid.filter(|k| k == old.key_id())) {
                let plain = old.decrypt(&kid, &enc, &context)?;
                diesel::update(users::table.find(user_id))
                    .set((
                        users::totp_pending_enc.eq(new.encrypt(&plain, &context)),
                        users::totp_pending_key_id.eq(new.key_id()),
                    ))
                    .execute(conn)?;
            }
        }
        Ok(out)
    })
}
