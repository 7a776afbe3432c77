//! A user's linked Steam account; the Web API key is stored encrypted.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use secrecy::SecretString;

use crate::crypto::{Cipher, DecryptError};
use crate::schema::steam_accounts;

/// A row of `steam_accounts`.
#[derive(Debug, Clone, Queryable, Selectable, get_size2::GetSize)]
#[diesel(table_name = steam_accounts, check_for_backend(diesel::pg::Pg))]
pub struct SteamAccount {
    pub user_id: i64,
    /// `None` (like the key) only for a half-linked account brought over
    /// from the legacy app; such an account is never synced.
    pub steam_id: Option<i64>,
    pub api_key_enc: Option<Vec<u8>>,
    pub api_key_key_id: Option<String>,
    pub api_key_last4: Option<String>,
    pub persona_name: Option<String>,
    pub avatar_url: Option<String>,
    pub linked_at: DateTime<Utc>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub last_sync_error: Option<String>,
    /// The last "Resync everything": schemas and percentages fetched
    /// before it are stale for this account's syncs.
    pub resync_requested_at: Option<DateTime<Utc>>,
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

fn last4(key: &str) -> String {
    key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect()
}

fn context(user_id: i64) -> String {
    format!("steam_key:{user_id}")
}

impl SteamAccount {
    /// Records a "Resync everything" (see [`SteamAccount::resync_requested_at`]).
    pub fn request_resync(conn: &mut PgConnection, user_id: i64) -> QueryResult<()> {
        diesel::update(steam_accounts::table.find(user_id))
            .set(steam_accounts::resync_requested_at.eq(diesel::dsl::now))
            .execute(conn)
            .map(|_| ())
    }

    /// The encrypted API keys under the master key `key_id`, locked for
    /// re-encryption: (user id, ciphertext).
    pub fn keys_under(conn: &mut PgConnection, key_id: &str) -> QueryResult<Vec<(i64, Vec<u8>)>> {
        steam_accounts::table
            .filter(steam_accounts::api_key_key_id.eq(key_id))
            .select((steam_accounts::user_id, steam_accounts::api_key_enc.assume_not_null()))
            .for_update()
            .load(conn)
    }

    /// Replaces the API key's ciphertext (key rotation).
    pub fn set_api_key_ciphertext(
        conn: &mut PgConnection,
        user_id: i64,
        enc: Vec<u8>,
        key_id: &str,
    ) -> QueryResult<()> {
        diesel::update(steam_accounts::table.find(user_id))
            .set((steam_accounts::api_key_enc.eq(enc), steam_accounts::api_key_key_id.eq(key_id)))
            .execute(conn)
            .map(|_| ())
    }

    /// When the account last finished a sync (`None` inside when never;
    /// `None` outside when nothing is linked).
    pub fn last_synced_at(conn: &mut PgConnection, user_id: i64) -> QueryResult<Option<Option<DateTime<Utc>>>> {
        steam_accounts::table.find(user_id).select(steam_accounts::last_synced_at).first(conn).optional()
    }

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
        let last4 = last4(api_key);
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

    /// The decrypted Web API key, if one is stored.
    pub fn api_key(&self, cipher: &Cipher) -> Result<Option<SecretString>, DecryptError> {
        let (Some(enc), Some(key_id)) = (&self.api_key_enc, &self.api_key_key_id) else { return Ok(None) };
        let bytes = cipher.decrypt(key_id, enc, &context(self.user_id))?;
        Ok(Some(SecretString::from(String::from_utf8_lossy(&bytes).into_owned())))
    }

    /// Both halves are there: the account can sync.
    pub fn is_complete(&self) -> bool {
        self.steam_id.is_some() && self.api_key_enc.is_some()
    }

    /// Keeps whichever half of a legacy link is valid (at least one), for
    /// the user to complete on the Steam page.
    pub fn keep_partial(
        conn: &mut PgConnection,
        cipher: &Cipher,
        user_id: i64,
        steam_id: Option<u64>,
        api_key: Option<&str>,
    ) -> QueryResult<()> {
        let enc = api_key.map(|k| cipher.encrypt(k.as_bytes(), &context(user_id)));
        let last4 = api_key.map(last4);
        diesel::insert_into(steam_accounts::table)
            .values((
                steam_accounts::user_id.eq(user_id),
                steam_accounts::steam_id.eq(steam_id.map(|s| s as i64)),
                steam_accounts::api_key_enc.eq(enc),
                steam_accounts::api_key_key_id.eq(api_key.map(|_| cipher.key_id())),
                steam_accounts::api_key_last4.eq(last4),
            ))
            .execute(conn)
            .map(|_| ())
    }

    /// Records how a sync ended: a finished one (games that failed are
    /// recorded on the games themselves) moves "last synced" and clears the
    /// error; one that stopped leaves its message for the page.
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
