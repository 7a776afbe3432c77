//! Accounts.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::text_enum::text_enum;
use crate::schema::users;

text_enum! {
    /// What a user may do.
    Role { User => "user", Admin => "admin" }
}

text_enum! {
    /// Whether an account may sign in.
    Status { Active => "active", Locked => "locked", Disabled => "disabled" }
}

/// A user's id with their TOTP secret and pending secret, each with its key id.
pub type TotpSecrets = (i64, Option<Vec<u8>>, Option<String>, Option<Vec<u8>>, Option<String>);

/// A row of `users`.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(Pg))]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: Option<String>,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub password_hash: Option<String>,
    pub role: Role,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub failed_logins: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub pending_email: Option<String>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub totp_secret_enc: Option<Vec<u8>>,
    pub totp_key_id: Option<String>,
    pub totp_enabled_at: Option<DateTime<Utc>>,
    pub totp_last_step: Option<i64>,
    pub totp_pending_enc: Option<Vec<u8>>,
    pub totp_pending_key_id: Option<String>,
    /// The account's name in the legacy app, when it was imported.
    pub legacy_username: Option<String>,
    pub import_run_id: Option<i64>,
}

/// One row of the user list.
#[derive(Debug, QueryableByName)]
pub struct UserRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub username: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub email: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub role: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub status: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>)]
    pub email_verified_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub total_rows: i64,
}

/// An account the importer brings over from the legacy app.
#[derive(Debug)]
pub struct ImportedUser {
    /// `None`: the next of the sequence (a dry run gives its own).
    pub id: Option<i64>,
    /// Its name in the legacy app.
    pub legacy: String,
    pub username: String,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub role: &'static str,
    pub created_at: DateTime<Utc>,
}

/// Accounts by state, for the admin dashboard.
#[derive(Debug, QueryableByName)]
pub struct AccountCounts {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub users: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub new_this_week: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub unverified: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub locked: i64,
}

/// What creating an account writes.
#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub role: Role,
}

impl User {
    /// Inserts a user; a taken username or email is a unique violation.
    /// The name is stored in NFC with its comparison key (`crate::names`).
    pub fn insert(conn: &mut PgConnection, new: &NewUser<'_>) -> QueryResult<User> {
        let name = crate::names::display_form(new.username);
        diesel::insert_into(users::table)
            .values((
                users::username_key.eq(crate::names::key(&name)),
                users::username.eq(&name),
                users::email.eq(new.email),
                users::password_hash.eq(new.password_hash),
                users::role.eq(new.role),
            ))
            .returning(User::as_returning())
            .get_result(conn)
    }

    pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Option<User>> {
        users::table.find(id).select(User::as_select()).first(conn).optional()
    }

    /// Finds by an address already normalised to lower case.
    pub fn find_by_email(conn: &mut PgConnection, email: &str) -> QueryResult<Option<User>> {
        users::table.filter(users::email.eq(email)).select(User::as_select()).first(conn).optional()
    }

    /// Finds by username (by its key: any case, any normal form) or by
    /// email (stored in [`crate::names::email_form`]).
    pub fn find_by_login(conn: &mut PgConnection, login: &str) -> QueryResult<Option<User>> {
        let login = login.trim();
        let key = crate::names::key(login);
        let email = crate::names::email_form(login);
        users::table
            .filter(users::username_key.eq(&key).or(users::email.eq(&email)).or(Self::unkeyed_named(login)))
            .order(users::username_key.eq(&key).desc().nulls_last())
            .select(User::as_select())
            .first(conn)
            .optional()
    }

    /// A row written before its key was filled in (by an older node while
    /// the cluster upgrades), compared the old way.
    fn unkeyed_named(name: &str) -> Box<dyn BoxableExpression<users::table, Pg, SqlType = diesel::sql_types::Bool>> {
        Box::new(
            users::username_key.is_null().and(
                diesel::dsl::sql::<diesel::sql_types::Bool>("lower(username) = lower(")
                    .bind::<Text, _>(name.to_owned())
                    .sql(")"),
            ),
        )
    }

    /// Fills in the comparison key of rows that lack one, a thousand at a
    /// time. Two names that now compare equal (say `σας` and `σασ`, kept
    /// apart by the old lower-case rule): the older account keeps its
    /// name, the other becomes `NAME-2` (the first free suffix, as the
    /// legacy import renames), and each rename is returned.
    pub fn fill_missing_keys(conn: &mut PgConnection) -> QueryResult<Vec<(String, String)>> {
        let mut renamed = Vec::new();
        loop {
            let rows: Vec<(i64, String)> = users::table
                .filter(users::username_key.is_null())
                .select((users::id, users::username))
                .order(users::id)
                .limit(1000)
                .load(conn)?;
            if rows.is_empty() {
                return Ok(renamed);
            }
            conn.transaction(|conn| {
                for (id, name) in rows {
                    let mut candidate = crate::names::display_form(&name);
                    let mut k = 1;
                    while Self::key_taken(conn, &crate::names::key(&candidate))? {
                        k += 1;
                        candidate = format!("{}-{k}", crate::names::display_form(&name));
                    }
                    if candidate != name {
                        renamed.push((name.clone(), candidate.clone()));
                    }
                    diesel::update(users::table.find(id))
                        .set((users::username.eq(&candidate), users::username_key.eq(crate::names::key(&candidate))))
                        .execute(conn)?;
                }
                Ok::<_, diesel::result::Error>(())
            })?;
        }
    }

    fn key_taken(conn: &mut PgConnection, key: &str) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(users::table.filter(users::username_key.eq(key)))).get_result(conn)
    }

    /// Every username's key, for the import's collision rule.
    pub fn all_keys(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
        Ok(users::table
            .select((users::username, users::username_key))
            .load::<(String, Option<String>)>(conn)?
            .into_iter()
            .map(|(name, key)| key.unwrap_or_else(|| crate::names::key(&name)))
            .collect())
    }

    /// Reads the row under `FOR UPDATE`, so concurrent sign-in failures
    /// (and the checks that count as one) are counted one after another.
    pub fn lock_for_update(conn: &mut PgConnection, id: i64) -> QueryResult<User> {
        users::table.find(id).for_update().select(User::as_select()).first(conn)
    }

    /// Stores the consecutive-failure count.
    pub fn set_failed_logins(conn: &mut PgConnection, id: i64, failures: i32) -> QueryResult<()> {
        diesel::update(users::table.find(id)).set(users::failed_logins.eq(failures)).execute(conn).map(|_| ())
    }

    /// Locks sign-in until `until` and starts the failure count again.
    pub fn lock_out(conn: &mut PgConnection, id: i64, until: DateTime<Utc>) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set((users::failed_logins.eq(0), users::locked_until.eq(until)))
            .execute(conn)
            .map(|_| ())
    }

    /// Records a successful sign-in: the failures and any lock are cleared.
    pub fn record_sign_in(conn: &mut PgConnection, id: i64, at: DateTime<Utc>) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set((
                users::failed_logins.eq(0),
                users::locked_until.eq(None::<DateTime<Utc>>),
                users::last_login_at.eq(at),
            ))
            .execute(conn)
            .map(|_| ())
    }

    /// Replaces the password hash (a change, or a legacy hash upgraded).
    pub fn set_password_hash(conn: &mut PgConnection, id: i64, hash: &str) -> QueryResult<()> {
        diesel::update(users::table.find(id)).set(users::password_hash.eq(hash)).execute(conn).map(|_| ())
    }

    /// A password reset by mailed link: the new hash, the lock lifted, and
    /// the address proved (the link reached its inbox).
    pub fn reset_password(conn: &mut PgConnection, user: &User, hash: &str) -> QueryResult<()> {
        diesel::update(users::table.find(user.id))
            .set((
                users::password_hash.eq(hash),
                users::failed_logins.eq(0),
                users::locked_until.eq(None::<DateTime<Utc>>),
                users::email_verified_at.eq(user.email_verified_at.unwrap_or_else(Utc::now)),
            ))
            .execute(conn)
            .map(|_| ())
    }

    /// Remembers an address waiting for its confirmation link.
    pub fn set_pending_email(conn: &mut PgConnection, id: i64, address: &str) -> QueryResult<()> {
        diesel::update(users::table.find(id)).set(users::pending_email.eq(address)).execute(conn).map(|_| ())
    }

    /// Makes `email` the proved address; a unique violation means another
    /// account took it in the meantime.
    pub fn confirm_email(conn: &mut PgConnection, id: i64, email: Option<&str>) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set((
                users::email.eq(email),
                users::email_verified_at.eq(Utc::now()),
                users::pending_email.eq(None::<String>),
            ))
            .execute(conn)
            .map(|_| ())
    }

    /// Marks the current address as proved (by an admin, or the CLI).
    pub fn mark_email_verified(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
        diesel::update(users::table.find(id).filter(users::email_verified_at.is_null()))
            .set(users::email_verified_at.eq(Utc::now()))
            .execute(conn)
            .map(|_| ())
    }

    /// Changes the role.
    pub fn set_role(conn: &mut PgConnection, id: i64, role: Role) -> QueryResult<()> {
        diesel::update(users::table.find(id)).set(users::role.eq(role)).execute(conn).map(|_| ())
    }

    /// Locks the account by an admin's decision.
    pub fn set_locked(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
        diesel::update(users::table.find(id)).set(users::status.eq(Status::Locked)).execute(conn).map(|_| ())
    }

    /// Lifts an admin lock and a lockout alike.
    pub fn unlock(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set((
                users::status.eq(Status::Active),
                users::locked_until.eq(None::<DateTime<Utc>>),
                users::failed_logins.eq(0),
            ))
            .execute(conn)
            .map(|_| ())
    }

    /// Deletes the account; its rows elsewhere go by cascade.
    pub fn delete(conn: &mut PgConnection, id: i64) -> QueryResult<usize> {
        diesel::delete(users::table.find(id)).execute(conn)
    }

    /// Stores an encrypted secret waiting for its first code.
    pub fn store_pending_totp(conn: &mut PgConnection, id: i64, enc: Vec<u8>, key_id: &str) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set((users::totp_pending_enc.eq(enc), users::totp_pending_key_id.eq(key_id)))
            .execute(conn)
            .map(|_| ())
    }

    /// Turns 2FA on with the confirmed secret; `step` is the code's time step,
    /// so that code cannot be used again.
    pub fn enable_totp(conn: &mut PgConnection, id: i64, enc: Vec<u8>, key_id: &str, step: i64) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set((
                users::totp_secret_enc.eq(enc),
                users::totp_key_id.eq(key_id),
                users::totp_enabled_at.eq(Utc::now()),
                users::totp_last_step.eq(step),
                users::totp_pending_enc.eq(None::<Vec<u8>>),
                users::totp_pending_key_id.eq(None::<String>),
            ))
            .execute(conn)
            .map(|_| ())
    }

    /// Remembers the last time step used, against replays.
    pub fn set_totp_step(conn: &mut PgConnection, id: i64, step: i64) -> QueryResult<()> {
        diesel::update(users::table.find(id)).set(users::totp_last_step.eq(step)).execute(conn).map(|_| ())
    }

    /// Turns 2FA off.
    pub fn disable_totp(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set((
                users::totp_secret_enc.eq(None::<Vec<u8>>),
                users::totp_key_id.eq(None::<String>),
                users::totp_enabled_at.eq(None::<DateTime<Utc>>),
                users::totp_last_step.eq(None::<i64>),
            ))
            .execute(conn)
            .map(|_| ())
    }

    /// The TOTP secrets (confirmed and pending) encrypted under `key_id`,
    /// locked for re-encryption.
    pub fn totp_secrets_under_key(conn: &mut PgConnection, key_id: &str) -> QueryResult<Vec<TotpSecrets>> {
        users::table
            .filter(users::totp_key_id.eq(key_id).or(users::totp_pending_key_id.eq(key_id)))
            .select((
                users::id,
                users::totp_secret_enc,
                users::totp_key_id,
                users::totp_pending_enc,
                users::totp_pending_key_id,
            ))
            .for_update()
            .load(conn)
    }

    /// Replaces the confirmed secret's ciphertext (key rotation).
    pub fn set_totp_secret(conn: &mut PgConnection, id: i64, enc: Vec<u8>, key_id: &str) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set((users::totp_secret_enc.eq(enc), users::totp_key_id.eq(key_id)))
            .execute(conn)
            .map(|_| ())
    }

    /// A page of accounts whose username or address matches the `ILIKE`
    /// pattern, newest first, each row with the total count.
    pub fn search(conn: &mut PgConnection, pattern: &str, limit: i64, offset: i64) -> QueryResult<Vec<UserRow>> {
        diesel::sql_query(
            "SELECT id, username, email, role, status, email_verified_at, created_at, count(*) OVER () AS total_rows
             FROM users WHERE username ILIKE $1 OR email ILIKE $1
             ORDER BY id DESC LIMIT $2 OFFSET $3",
        )
        .bind::<Text, _>(pattern)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .bind::<diesel::sql_types::BigInt, _>(offset)
        .load(conn)
    }

    /// Whether an account has this username, by [`crate::names::key`].
    pub fn username_taken(conn: &mut PgConnection, username: &str) -> QueryResult<bool> {
        let key = crate::names::key(username);
        diesel::select(diesel::dsl::exists(
            users::table.filter(users::username_key.eq(&key).or(Self::unkeyed_named(username.trim()))),
        ))
        .get_result(conn)
    }

    /// The usernames of these accounts, by id.
    pub fn usernames(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<std::collections::HashMap<i64, String>> {
        Ok(users::table
            .filter(users::id.eq_any(ids))
            .select((users::id, users::username))
            .load(conn)?
            .into_iter()
            .collect())
    }

    /// Inserts accounts for import run `run_id`; returns each new id with
    /// its legacy name.
    pub fn insert_imported(
        conn: &mut PgConnection,
        rows: &[ImportedUser],
        run_id: i64,
    ) -> QueryResult<Vec<(i64, Option<String>)>> {
        let values: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.id.map(|id| users::id.eq(id)),
                    users::username.eq(&r.username),
                    users::username_key.eq(crate::names::key(&r.username)),
                    users::email.eq(&r.email),
                    users::password_hash.eq(&r.password_hash),
                    users::role.eq(r.role),
                    users::created_at.eq(r.created_at),
                    users::legacy_username.eq(&r.legacy),
                    users::import_run_id.eq(run_id),
                )
            })
            .collect();
        diesel::insert_into(users::table)
            .values(&values)
            .returning((users::id, users::legacy_username))
            .get_results(conn)
    }

    /// Deletes the accounts import run `run_id` created (their rows
    /// elsewhere go by cascade).
    pub fn delete_imported(conn: &mut PgConnection, run_id: i64) -> QueryResult<usize> {
        diesel::delete(users::table.filter(users::import_run_id.eq(run_id))).execute(conn)
    }

    /// How many accounts there are, by state.
    pub fn counts(conn: &mut PgConnection) -> QueryResult<AccountCounts> {
        diesel::sql_query(
            "SELECT count(*) AS users,
                    count(*) FILTER (WHERE created_at > now() - interval '7 days') AS new_this_week,
                    count(*) FILTER (WHERE email_verified_at IS NULL) AS unverified,
                    count(*) FILTER (WHERE status = 'locked' OR locked_until > now()) AS locked
             FROM users",
        )
        .get_result(conn)
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether sign-in asks for a second factor.
    pub fn has_totp(&self) -> bool {
        self.totp_enabled_at.is_some()
    }

    /// The address notices may go to: one its owner proved, or one the
    /// legacy app had in use. An address typed at sign-up through Steam
    /// and not yet confirmed gets nothing.
    pub fn verified_email(&self) -> Option<&str> {
        self.email.as_deref().filter(|_| self.email_verified_at.is_some() || self.legacy_username.is_some())
    }

    /// Whether the account has a password (accounts made through Steam
    /// have none until their owner sets one).
    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }
}
