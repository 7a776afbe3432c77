//! A user's linked Steam account; the Web API key is stored encrypted.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use secrecy::SecretString;

use crate::crypto::{Cipher, DecryptError};
use crate::schema::steam_accounts;

/// A row of `steam_accounts`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = steam_accounts, check_for_backend(diesel::pg::Pg))]
pub struct SteamAccount {
    pub user_id: i64,
    pub steam_id: i64,
    pub api_key_enc: Vec<u8>,
    pub api_key_key_id: String,
    pub api_key_last4: String,
    pub persona_name: Option<String>,
    pub avatar_url: Option<String>,
    pub linked_at: DateTime<Utc>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub last_sync_error: Option<String>,
}

/// What linking writes, on insert and on relink alike.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = steam_accounts)]
struct LinkRow<'a> {
    user_id: i64,
    steam_id: i64,
    api_key_enc: &'a [u8],
    api_key_key_id: &'a str,
    api_key_last4: &'a str,
    persona_name: &'a str,
    avatar_url: Option<&'a str>,
    linked_at: DateTime<Utc>,
}

fn context(user_id: i64) -> String {
    format!("steam_key:{user_id}")
}

impl SteamAccount {
    pub fn find(conn: &mut PgConnection, user_id: i64) -> QueryResult<Option<SteamAccount>> {
        steam_accounts::table.find(user_id).select(SteamAccount::as_select()).first(conn).optional()
    }

    /// Links (or relinks) a Steam account, encrypting the key.
    pub fn link(
        conn: &mut PgConnection,
        cipher: &Cipher,
        user_id: i64,
        steam_id: u64,
        api_key: &str,
        persona: &str,
        avatar: Option<&str>,
    ) -> QueryResult<()> {
        let enc = cipher.encrypt(api_key.as_bytes(), &context(user_id));
        let last4: String = api_key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
        let row = LinkRow {
            user_id,
            steam_id: steam_id as i64,
            api_key_enc: &enc,
            api_key_key_id: cipher.key_id(),
            api_key_last4: &last4,
            persona_name: persona,
            avatar_url: avatar,
            linked_at: Utc::now(),
        };
        diesel::insert_into(steam_accounts::table)
            .values(&row)
            .on_conflict(steam_accounts::user_id)
            .do_update()
            .set(&row)
            .execute(conn)
            .map(|_| ())
    }

    pub fn unlink(conn: &mut PgConnection, user_id: i64) -> QueryResult<bool> {
        diesel::delete(steam_accounts::table.find(user_id)).execute(conn).map(|n| n > 0)
    }

    /// The decrypted Web API key.
    pub fn api_key(&self, cipher: &Cipher) -> Result<SecretString, DecryptError> {
        let bytes = cipher.decrypt(&self.api_key_key_id, &self.api_key_enc, &context(self.user_id))?;
        Ok(SecretString::from(String::from_utf8_lossy(&bytes).into_owned()))
    }

    pub fn record_sync(conn: &mut PgConnection, user_id: i64, error: Option<&str>) -> QueryResult<()> {
        let q = diesel::update(steam_accounts::table.find(user_id));
        match error {
            None => q
                .set((
                    steam_accounts::last_synced_at.eq(Utc::now()),
                    steam_accounts::last_sync_error.eq(None::<String>),
                ))
                .execute(conn),
            Some(e) => q.set(steam_accounts::last_sync_error.eq(e)).execute(conn),
        }
        .map(|_| ())
    }
}
