//! Accounts.

use chrono::{DateTime, Utc};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;

use crate::schema::users;

/// Generates text-backed enums stored in a `TEXT` column with a CHECK
/// constraint: readable in psql, and a new value is a migration away.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, AsExpression, FromSqlRow)]
        #[diesel(sql_type = Text)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// The value stored in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("unknown {} `{other}`", stringify!($name))),
                }
            }
        }

        impl ToSql<Text, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
            }
        }

        impl FromSql<Text, Pg> for $name {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                let s = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
                Ok(s.parse()?)
            }
        }
    };
}

text_enum! {
    /// What a user may do.
    Role { User => "user", Admin => "admin" }
}

text_enum! {
    /// Whether an account may sign in.
    Status { Active => "active", Locked => "locked", Disabled => "disabled" }
}

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
    pub fn insert(conn: &mut PgConnection, new: &NewUser<'_>) -> QueryResult<User> {
        diesel::insert_into(users::table).values(new).returning(User::as_returning()).get_result(conn)
    }

    pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Option<User>> {
        users::table.find(id).select(User::as_select()).first(conn).optional()
    }

    /// Finds by an address already normalised to lower case.
    pub fn find_by_email(conn: &mut PgConnection, email: &str) -> QueryResult<Option<User>> {
        users::table.filter(users::email.eq(email)).select(User::as_select()).first(conn).optional()
    }

    /// Finds by username (any case) or by email (stored lower-case).
    pub fn find_by_login(conn: &mut PgConnection, login: &str) -> QueryResult<Option<User>> {
        let login = login.trim();
        let lower = login.to_lowercase();
        users::table
            .filter(
                diesel::dsl::sql::<diesel::sql_types::Bool>("lower(username) = ")
                    .bind::<Text, _>(lower.clone())
                    .or(users::email.eq(lower)),
            )
            .select(User::as_select())
            .first(conn)
            .optional()
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether sign-in asks for a second factor.
    pub fn has_totp(&self) -> bool {
        self.totp_enabled_at.is_some()
    }
}
