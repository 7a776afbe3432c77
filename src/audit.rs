//! The audit log: who did what to whom, from where, and whether it worked.
//! Nothing secret goes in: no passwords, tokens or keys, in `details` either.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::Value;

use crate::error::AppError;
use crate::schema::audit_log;

/// Where a request came from, as the audit log and session list show it.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl RequestMeta {
    /// The client's address: the peer's, or what a trusted proxy reported
    /// (`crate::client_ip`). Anyone can send forwarded headers, so they are
    /// believed only from `TRUSTED_PROXIES`.
    pub fn from_request(req: &HttpRequest) -> Self {
        let ip = crate::client_ip::of_request(req).map(|ip| ip.to_string());
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect());
        RequestMeta { ip, user_agent }
    }
}

impl FromRequest for RequestMeta {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Ok(RequestMeta::from_request(req)))
    }
}

/// One entry, built up then written with [`AuditEvent::record`].
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_log)]
pub struct AuditEvent {
    pub event_type: &'static str,
    pub action: &'static str,
    pub actor_id: Option<i64>,
    pub target_id: Option<i64>,
    pub target: Option<String>,
    pub success: bool,
    pub error: Option<String>,
    pub details: Value,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl AuditEvent {
    /// A successful `event_type`/`action` seen from `meta`.
    pub fn new(event_type: &'static str, action: &'static str, meta: &RequestMeta) -> Self {
        AuditEvent {
            event_type,
            action,
            actor_id: None,
            target_id: None,
            target: None,
            success: true,
            error: None,
            details: Value::Object(Default::default()),
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
        }
    }

    pub fn actor(mut self, id: i64) -> Self {
        self.actor_id = Some(id);
        self
    }

    /// The account acted on; also the actor unless set otherwise.
    pub fn target_user(mut self, id: i64, username: &str) -> Self {
        self.target_id = Some(id);
        self.target = Some(username.to_owned());
        self
    }

    pub fn target_text(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn failed(mut self, error: impl Into<String>) -> Self {
        self.success = false;
        self.error = Some(error.into());
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn record(&self, conn: &mut PgConnection) -> QueryResult<()> {
        diesel::insert_into(audit_log::table).values(self).execute(conn).map(|_| ())
    }
}

/// A row of the log as pages read it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log, check_for_backend(diesel::pg::Pg))]
pub struct AuditEntry {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub event_type: String,
    pub action: String,
    pub actor_id: Option<i64>,
    pub target_id: Option<i64>,
    pub target: Option<String>,
    pub success: bool,
    pub error: Option<String>,
    pub details: Value,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl AuditEntry {
    /// The newest sign-in attempts against one account.
    pub fn recent_logins(conn: &mut PgConnection, user_id: i64, limit: i64) -> QueryResult<Vec<AuditEntry>> {
        audit_log::table
            .filter(audit_log::target_id.eq(user_id))
            .filter(audit_log::event_type.eq("auth"))
            .filter(audit_log::action.eq_any(["login", "lockout"]))
            .order(audit_log::occurred_at.desc())
            .limit(limit)
            .select(AuditEntry::as_select())
            .load(conn)
    }
}

/// Deletes entries older than `days`; the worker runs it on its periodic
/// tick so the log keeps only what `AUDIT_RETENTION_DAYS` allows.
pub fn purge_older_than(conn: &mut PgConnection, days: u32) -> QueryResult<usize> {
    let cutoff = Utc::now() - chrono::Duration::days(days as i64);
    diesel::delete(audit_log::table.filter(audit_log::occurred_at.lt(cutoff))).execute(conn)
}

/// The viewer's filters, as the query string carries them.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct AuditFilter {
    pub event_type: Option<String>,
    /// Username of the actor.
    pub actor: Option<String>,
    /// `yes`, `no` or empty.
    pub success: Option<String>,
    /// `YYYY-MM-DD`, inclusive, UTC.
    pub from: Option<String>,
    pub to: Option<String>,
    pub page: Option<i64>,
}

fn day(raw: &Option<String>) -> Result<Option<NaiveDate>, AppError> {
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| AppError::BadRequest(format!("`{d}` is not a date like 2026-01-31."))),
    }
}

impl AuditFilter {
    /// A field as typed, trimmed; empty when absent.
    pub fn text(v: &Option<String>) -> &str {
        v.as_deref().map(str::trim).unwrap_or("")
    }

    /// The filtered query; `None` when the actor is unknown.
    fn query(&self, conn: &mut PgConnection) -> Result<Option<audit_log::BoxedQuery<'static, Pg>>, AppError> {
        let mut q = audit_log::table.into_boxed::<Pg>();
        let event_type = Self::text(&self.event_type);
        if !event_type.is_empty() {
            q = q.filter(audit_log::event_type.eq(event_type.to_owned()));
        }
        let actor = Self::text(&self.actor);
        if !actor.is_empty() {
            let id = crate::models::user::User::find_by_login(conn, actor)?.map(|u| u.id);
            let Some(id) = id else { return Ok(None) };
            q = q.filter(audit_log::actor_id.eq(id));
        }
        match Self::text(&self.success) {
            "yes" => q = q.filter(audit_log::success.eq(true)),
            "no" => q = q.filter(audit_log::success.eq(false)),
            _ => {}
        }
        if let Some(from) = day(&self.from)? {
            q = q.filter(audit_log::occurred_at.ge(from.and_hms_opt(0, 0, 0).expect("midnight").and_utc()));
        }
        if let Some(to) = day(&self.to)? {
            let end = to.succ_opt().unwrap_or(to).and_hms_opt(0, 0, 0).expect("midnight").and_utc();
            q = q.filter(audit_log::occurred_at.lt(end));
        }
        Ok(Some(q))
    }
}

/// An audit entry with its actor's name.
pub type AuditRow = (AuditEntry, Option<String>);

pub fn search(
    conn: &mut PgConnection,
    filter: &AuditFilter,
    offset: i64,
    limit: i64,
) -> Result<(Vec<AuditRow>, i64), AppError> {
    let Some(q) = filter.query(conn)? else { return Ok((Vec::new(), 0)) };
    let Some(count_q) = filter.query(conn)? else { return Ok((Vec::new(), 0)) };
    let total: i64 = count_q.count().get_result(conn)?;
    let entries: Vec<AuditEntry> = q
        .order((audit_log::occurred_at.desc(), audit_log::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(AuditEntry::as_select())
        .load(conn)?;
    let ids: Vec<i64> = entries.iter().filter_map(|e| e.actor_id).collect();
    let names = crate::models::user::User::usernames(conn, &ids)?;
    let rows = entries
        .into_iter()
        .map(|e| {
            let name = e.actor_id.and_then(|id| names.get(&id).cloned());
            (e, name)
        })
        .collect();
    Ok((rows, total))
}

/// Failed sign-ins and lockouts on one day.
#[derive(Debug, QueryableByName)]
pub struct DayRow {
    #[diesel(sql_type = diesel::sql_types::Date)]
    pub day: NaiveDate,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub failed_logins: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub lockouts: i64,
}

/// An address that failed to sign in, and how many accounts it tried.
#[derive(Debug, QueryableByName)]
pub struct IpRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub ip: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub failures: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub accounts: i64,
}

/// Failed sign-ins and lockouts for each of the last `days` days, empty
/// days included.
pub fn sign_in_failures_by_day(conn: &mut PgConnection, days: i64) -> QueryResult<Vec<DayRow>> {
    use diesel::sql_types::BigInt;
    diesel::sql_query(
        "SELECT d::date AS day,
                count(a.id) FILTER (WHERE a.action = 'login' AND NOT a.success) AS failed_logins,
                count(a.id) FILTER (WHERE a.action = 'lockout') AS lockouts
         FROM generate_series(current_date - ($1 - 1)::int, current_date, interval '1 day') AS d
         LEFT JOIN audit_log a ON a.event_type = 'auth' AND a.action IN ('login', 'lockout')
              AND a.occurred_at >= d AND a.occurred_at < d + interval '1 day'
         GROUP BY d ORDER BY d",
    )
    .bind::<BigInt, _>(days)
    .load(conn)
}

/// The ten addresses with the most failed sign-ins in the last `days` days.
pub fn failing_addresses(conn: &mut PgConnection, days: i64) -> QueryResult<Vec<IpRow>> {
    use diesel::sql_types::BigInt;
    diesel::sql_query(
        "SELECT ip, count(*) AS failures, count(DISTINCT target_id) AS accounts
         FROM audit_log
         WHERE event_type = 'auth' AND action = 'login' AND NOT success AND ip IS NOT NULL
           AND occurred_at > now() - make_interval(days => $1::int)
         GROUP BY ip ORDER BY failures DESC, ip LIMIT 10",
    )
    .bind::<BigInt, _>(days)
    .load(conn)
}
