//! The server-side registry of signed-in browsers (`user_sessions`) and the
//! devices each account signed in from (`known_devices`).

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use rand::RngCore;

use crate::audit::RequestMeta;
use crate::models::user::{Status, User};
use crate::schema::{known_devices, user_sessions, user_versions, users};
use crate::versions::{instance_versions, versions, InstanceVersions, Versions};

/// A session without "remember me" ends after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::minutes(30);
/// "Remember me" keeps a session this long.
pub const REMEMBER_FOR: Duration = Duration::days(14);
/// No session outlives this without "remember me", however active.
pub const ABSOLUTE_LIMIT: Duration = Duration::hours(12);
/// `last_seen_at` is written at most this often, not on every request.
const TOUCH_EVERY: Duration = Duration::seconds(60);

/// A row of `user_sessions`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = user_sessions, check_for_backend(diesel::pg::Pg))]
pub struct UserSession {
    pub id: String,
    pub user_id: i64,
    pub remember: bool,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl UserSession {
    /// Registers a new signed-in browser.
    pub fn create(
        conn: &mut PgConnection,
        user_id: i64,
        remember: bool,
        meta: &RequestMeta,
    ) -> QueryResult<UserSession> {
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let lifetime = if remember { REMEMBER_FOR } else { ABSOLUTE_LIMIT };
        diesel::insert_into(user_sessions::table)
            .values((
                user_sessions::id.eq(id),
                user_sessions::user_id.eq(user_id),
                user_sessions::remember.eq(remember),
                user_sessions::ip.eq(&meta.ip),
                user_sessions::user_agent.eq(&meta.user_agent),
                user_sessions::expires_at.eq(Utc::now() + lifetime),
            ))
            .returning(UserSession::as_returning())
            .get_result(conn)
    }

    /// The user's sessions still in force, newest activity first.
    pub fn active_for_user(conn: &mut PgConnection, user_id: i64) -> QueryResult<Vec<UserSession>> {
        let now = Utc::now();
        let rows: Vec<UserSession> = user_sessions::table
            .filter(user_sessions::user_id.eq(user_id))
            .filter(user_sessions::revoked_at.is_null())
            .filter(user_sessions::expires_at.gt(now))
            .order(user_sessions::last_seen_at.desc())
            .select(UserSession::as_select())
            .load(conn)?;
        Ok(rows.into_iter().filter(|s| !s.is_idle(now)).collect())
    }

    fn is_idle(&self, now: DateTime<Utc>) -> bool {
        !self.remember && self.last_seen_at + IDLE_TIMEOUT < now
    }

    /// Ends one session of `user_id`; false when it was not theirs or already over.
    pub fn revoke(conn: &mut PgConnection, user_id: i64, id: &str) -> QueryResult<bool> {
        diesel::update(
            user_sessions::table
                .filter(user_sessions::id.eq(id))
                .filter(user_sessions::user_id.eq(user_id))
                .filter(user_sessions::revoked_at.is_null()),
        )
        .set(user_sessions::revoked_at.eq(Utc::now()))
        .execute(conn)
        .map(|n| n > 0)
    }

    /// Ends every session of `user_id` except `keep`; returns how many.
    pub fn revoke_all_except(conn: &mut PgConnection, user_id: i64, keep: Option<&str>) -> QueryResult<usize> {
        let keep = keep.unwrap_or("");
        diesel::update(
            user_sessions::table
                .filter(user_sessions::user_id.eq(user_id))
                .filter(user_sessions::id.ne(keep))
                .filter(user_sessions::revoked_at.is_null()),
        )
        .set(user_sessions::revoked_at.eq(Utc::now()))
        .execute(conn)
    }

    /// A short description of the browser, from its user agent.
    pub fn device(&self) -> String {
        describe_device(self.user_agent.as_deref())
    }
}

/// "Firefox on Linux", or "Unknown device".
pub fn describe_device(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent else { return "Unknown device".into() };
    match woothee::parser::Parser::new().parse(ua) {
        Some(r) if r.name != "UNKNOWN" => {
            if r.os == "UNKNOWN" {
                r.name.to_string()
            } else {
                format!("{} on {}", r.name, r.os)
            }
        }
        _ => ua.chars().take(60).collect(),
    }
}

/// Records the device; true when this user had not used it before.
pub fn remember_device(conn: &mut PgConnection, user_id: i64, user_agent: Option<&str>) -> QueryResult<bool> {
    let fingerprint = describe_device(user_agent);
    let inserted = diesel::insert_into(known_devices::table)
        .values((known_devices::user_id.eq(user_id), known_devices::fingerprint.eq(&fingerprint)))
        .on_conflict_do_nothing()
        .execute(conn)?;
    if inserted == 0 {
        diesel::update(known_devices::table.find((user_id, &fingerprint)))
            .set(known_devices::last_seen_at.eq(Utc::now()))
            .execute(conn)?;
    }
    Ok(inserted == 1)
}

/// The user of a live session: `None` when it is revoked, expired, idle
/// or its account is no longer active (then it is revoked now). Its
/// last-seen time is refreshed at most once a minute. The same statement
/// reads the versions the user's cached pages are kept under.
pub fn load_live(
    conn: &mut PgConnection,
    user_id: i64,
    sid: &str,
) -> QueryResult<Option<(UserSession, User, Versions)>> {
    let now = Utc::now();
    let row: Option<(UserSession, User, Option<i64>, InstanceVersions)> = user_sessions::table
        .inner_join(users::table)
        .left_join(user_versions::table.on(user_versions::user_id.eq(user_sessions::user_id)))
        .filter(user_sessions::id.eq(sid))
        .filter(user_sessions::user_id.eq(user_id))
        .filter(user_sessions::revoked_at.is_null())
        .select((UserSession::as_select(), User::as_select(), user_versions::version.nullable(), instance_versions()))
        .first(conn)
        .optional()?;
    let Some((s, user, version, instance)) = row else { return Ok(None) };
    let versions = versions(version, instance);
    if s.expires_at <= now || s.is_idle(now) || user.status != Status::Active {
        UserSession::revoke(conn, user_id, sid)?;
        return Ok(None);
    }
    if now - s.last_seen_at > TOUCH_EVERY {
        diesel::update(user_sessions::table.find(sid)).set(user_sessions::last_seen_at.eq(now)).execute(conn)?;
    }
    Ok(Some((s, user, versions)))
}
