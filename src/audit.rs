//! The audit log: who did what to whom, from where, and whether it worked.
//! Nothing secret goes in: no passwords, tokens or keys, in `details` either.

use std::net::IpAddr;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::Value;

use crate::schema::audit_log;

/// Where a request came from, as the audit log and session list show it.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl RequestMeta {
    /// The peer address. Forwarded headers are ignored on purpose: anyone can
    /// send them, and per-IP limits keyed on them would be trivial to dodge.
    pub fn from_request(req: &HttpRequest) -> Self {
        let ip = req.peer_addr().map(|a| normalise_ip(a.ip()).to_string());
        let user_agent = req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect());
        RequestMeta { ip, user_agent }
    }
}

fn normalise_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
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
