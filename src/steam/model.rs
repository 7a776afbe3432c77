//! A user's linked Steam account; the Web API key is stored encrypted.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text, Timestamptz};
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
    /// When the owner last proved this SteamID by signing in through
    /// Steam; `None` for a link made before that proof was asked for (or
    /// brought over from the legacy app), which is kept off leaderboards,
    /// compare and public profiles.
    pub verified_at: Option<DateTime<Utc>>,
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

    /// Who holds `steam_id`, locked until the caller's transaction ends:
    /// (user id, whether they proved it).
    pub fn holder(conn: &mut PgConnection, steam_id: u64) -> QueryResult<Option<(i64, bool)>> {
        steam_accounts::table
            .filter(steam_accounts::steam_id.eq(steam_id as i64))
            .select((steam_accounts::user_id, steam_accounts::verified_at.is_not_null()))
            .for_update()
            .first(conn)
            .optional()
    }

    /// Who holds `steam_id`, without locking anything: (user id, whether
    /// they proved it).
    pub fn holder_unlocked(conn: &mut PgConnection, steam_id: u64) -> QueryResult<Option<(i64, bool)>> {
        steam_accounts::table
            .filter(steam_accounts::steam_id.eq(steam_id as i64))
            .select((steam_accounts::user_id, steam_accounts::verified_at.is_not_null()))
            .first(conn)
            .optional()
    }

    /// Links `steam_id` to the user as proven just now, keeping any key of
    /// theirs on file; the persona and avatar when known. The unique index
    /// refuses it when another account holds the SteamID.
    pub fn link_proven(
        conn: &mut PgConnection,
        user_id: i64,
        steam_id: u64,
        persona: Option<&str>,
        avatar: Option<&str>,
    ) -> QueryResult<()> {
        let now = Utc::now();
        diesel::insert_into(steam_accounts::table)
            .values((
                steam_accounts::user_id.eq(user_id),
                steam_accounts::steam_id.eq(steam_id as i64),
                steam_accounts::persona_name.eq(persona),
                steam_accounts::avatar_url.eq(avatar),
                steam_accounts::linked_at.eq(now),
                steam_accounts::verified_at.eq(now),
            ))
            .on_conflict(steam_accounts::user_id)
            .do_update()
            .set((
                steam_accounts::steam_id.eq(steam_id as i64),
                steam_accounts::verified_at.eq(now),
                steam_accounts::linked_at.eq(now),
                // Kept when Steam gave none this time, for the same SteamID
                // only: another one's name and sync time would be wrong.
                steam_accounts::persona_name.eq(diesel::dsl::sql::<Nullable<Text>>(
                    "CASE WHEN steam_accounts.steam_id = excluded.steam_id
                          THEN coalesce(excluded.persona_name, steam_accounts.persona_name)
                          ELSE excluded.persona_name END",
                )),
                steam_accounts::avatar_url.eq(diesel::dsl::sql::<Nullable<Text>>(
                    "CASE WHEN steam_accounts.steam_id = excluded.steam_id
                          THEN coalesce(excluded.avatar_url, steam_accounts.avatar_url)
                          ELSE excluded.avatar_url END",
                )),
                steam_accounts::last_synced_at.eq(diesel::dsl::sql::<Nullable<Timestamptz>>(
                    "CASE WHEN steam_accounts.steam_id = excluded.steam_id THEN steam_accounts.last_synced_at END",
                )),
            ))
            .execute(conn)
            .map(|_| ())
    }

    /// Marks the user's link proven (they signed in through Steam as the
    /// SteamID it already names).
    pub fn mark_verified(conn: &mut PgConnection, user_id: i64) -> QueryResult<()> {
        diesel::update(steam_accounts::table.find(user_id))
            .set(steam_accounts::verified_at.eq(diesel::dsl::now))
            .execute(conn)
            .map(|_| ())
    }

    /// Takes an unproven SteamID from its holder (the proven owner claimed
    /// it): their key stays, the SteamID and what was proven go.
    pub fn release(conn: &mut PgConnection, user_id: i64) -> QueryResult<()> {
        // Without a key there is nothing left to keep.
        diesel::delete(steam_accounts::table.find(user_id).filter(steam_accounts::api_key_enc.is_null()))
            .execute(conn)?;
        diesel::update(steam_accounts::table.find(user_id))
            .set((
                steam_accounts::steam_id.eq(None::<i64>),
                steam_accounts::verified_at.eq(None::<DateTime<Utc>>),
                steam_accounts::persona_name.eq(None::<String>),
                steam_accounts::avatar_url.eq(None::<String>),
                steam_accounts::last_synced_at.eq(None::<DateTime<Utc>>),
            ))
            .execute(conn)
            .map(|_| ())
    }

    /// Stores the user's own Web API key (encrypted), with or without a
    /// SteamID linked yet.
    pub fn set_api_key(conn: &mut PgConnection, cipher: &Cipher, user_id: i64, api_key: &str) -> QueryResult<()> {
        let enc = cipher.encrypt(api_key.as_bytes(), &context(user_id));
        let values = (
            steam_accounts::api_key_enc.eq(Some(enc)),
            steam_accounts::api_key_key_id.eq(Some(cipher.key_id())),
            steam_accounts::api_key_last4.eq(Some(last4(api_key))),
        );
        diesel::insert_into(steam_accounts::table)
            .values((steam_accounts::user_id.eq(user_id), values.clone()))
            .on_conflict(steam_accounts::user_id)
            .do_update()
            .set(values)
            .execute(conn)
            .map(|_| ())
    }

    /// Forgets the user's own key (syncs use the instance's from then on).
    /// A row left with neither SteamID nor key goes.
    pub fn clear_api_key(conn: &mut PgConnection, user_id: i64) -> QueryResult<()> {
        // A row holding the key alone goes first: a row with neither half
        // is refused by the table's check.
        diesel::delete(steam_accounts::table.find(user_id).filter(steam_accounts::steam_id.is_null())).execute(conn)?;
        diesel::update(steam_accounts::table.find(user_id))
            .set((
                steam_accounts::api_key_enc.eq(None::<Vec<u8>>),
                steam_accounts::api_key_key_id.eq(None::<String>),
                steam_accounts::api_key_last4.eq(None::<String>),
            ))
            .execute(conn)
            .map(|_| ())
    }

    /// Records the persona and avatar Steam gives (a sync's first call).
    pub fn set_persona(conn: &mut PgConnection, user_id: i64, persona: &str, avatar: Option<&str>) -> QueryResult<()> {
        diesel::update(steam_accounts::table.find(user_id))
            .set((steam_accounts::persona_name.eq(persona), steam_accounts::avatar_url.eq(avatar)))
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

    /// A SteamID is linked (the account can sync, with its key or the
    /// instance's).
    pub fn is_linked(&self) -> bool {
        self.steam_id.is_some()
    }

    /// The SteamID is linked and its owner proved it.
    pub fn is_verified(&self) -> bool {
        self.steam_id.is_some() && self.verified_at.is_some()
    }

    /// Keeps what a legacy account brought (a SteamID, a key, or both) as
    /// an unproven link, for its owner to prove by signing in through Steam.
    pub fn keep_unproven(
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

    /// Accounts with a SteamID linked, and how many of them proved it.
    pub fn counts(conn: &mut PgConnection) -> QueryResult<(i64, i64)> {
        steam_accounts::table
            .filter(steam_accounts::steam_id.is_not_null())
            .select((diesel::dsl::count_star(), diesel::dsl::count(steam_accounts::verified_at)))
            .first(conn)
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
