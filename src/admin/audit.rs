//! The audit log viewer: filters, pages, and CSV export of the same view.

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use serde::Deserialize;

use crate::audit::AuditEntry;
use crate::auth::extractors::AdminUser;
use crate::db::{self};
use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::render;
use crate::schema::{audit_log, users};
use crate::state::AppState;

pub const PAGE_SIZE: i64 = 100;
/// Rows one CSV export carries at most.
pub const CSV_MAX_ROWS: i64 = 100_000;

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
    fn text(v: &Option<String>) -> &str {
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

    fn link(&self, path: &str, page: Option<i64>) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("event_type", &self.event_type),
            ("actor", &self.actor),
            ("success", &self.success),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            s.append_pair(k, Self::text(v));
        }
        if let Some(p) = page {
            s.append_pair("page", &p.to_string());
        }
        format!("{path}?{}", s.finish())
    }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    ctx: PageContext,
    filter: AuditFilter,
    rows: Vec<(AuditEntry, Option<String>)>,
    page: i64,
    pages: i64,
}

impl AuditPage {
    fn page_link(&self, page: &i64) -> String {
        self.filter.link("/admin/audit", Some(*page))
    }
    fn csv_link(&self) -> String {
        self.filter.link("/admin/audit.csv", None)
    }
    fn value<'a>(&self, v: &'a Option<String>) -> &'a str {
        v.as_deref().unwrap_or("")
    }
}

/// Entries with their actor's name, for one page or the export.
/// An audit entry with its actor's name.
type AuditRow = (AuditEntry, Option<String>);

fn load(
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
    let names: std::collections::HashMap<i64, String> = users::table
        .filter(users::id.eq_any(&ids))
        .select((users::id, users::username))
        .load(conn)?
        .into_iter()
        .collect();
    let rows = entries
        .into_iter()
        .map(|e| {
            let name = e.actor_id.and_then(|id| names.get(&id).cloned());
            (e, name)
        })
        .collect();
    Ok((rows, total))
}

async fn view(
    ctx: PageContext,
    _admin: AdminUser,
    filter: web::Query<AuditFilter>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let filter = filter.into_inner();
    let page = crate::pagination::page_number(filter.page);
    let f = filter.clone();
    let (rows, total) =
        db::run(pool, move |conn| load(conn, &f, crate::pagination::offset(page, PAGE_SIZE), PAGE_SIZE)).await?;
    let pages = crate::pagination::page_count(total, PAGE_SIZE);
    render(&AuditPage { ctx, filter, rows, page, pages })
}

/// A spreadsheet must not run a cell as a formula.
fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

async fn export(
    admin: AdminUser,
    filter: web::Query<AuditFilter>,
    meta: crate::audit::RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let filter = filter.into_inner();
    let actor = admin.0.user.id;
    let body = db::run(pool, move |conn| {
        let (rows, _) = load(conn, &filter, 0, CSV_MAX_ROWS)?;
        crate::audit::AuditEvent::new("admin", "export_audit", &meta)
            .actor(actor)
            .details(serde_json::json!({ "rows": rows.len() }))
            .record(conn)?;
        let mut w = csv::Writer::from_writer(Vec::new());
        let header = [
            "id",
            "occurred_at",
            "event_type",
            "action",
            "actor",
            "target",
            "success",
            "error",
            "ip",
            "user_agent",
            "details",
        ];
        w.write_record(header).map_err(|e| AppError::Internal(e.into()))?;
        for (e, name) in rows {
            let at: DateTime<Utc> = e.occurred_at;
            let record = [
                e.id.to_string(),
                at.to_rfc3339(),
                e.event_type,
                e.action,
                name.unwrap_or_default(),
                e.target.unwrap_or_default(),
                e.success.to_string(),
                e.error.unwrap_or_default(),
                e.ip.unwrap_or_default(),
                e.user_agent.unwrap_or_default(),
                e.details.to_string(),
            ];
            w.write_record(record.iter().map(|c| cell(c))).map_err(|e| AppError::Internal(e.into()))?;
        }
        w.into_inner().map_err(|e| AppError::Internal(anyhow::anyhow!("{e}")))
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", "attachment; filename=\"questline-audit.csv\""))
        .body(body))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/audit").route(web::get().to(view)))
        .service(web::resource("/admin/audit.csv").route(web::get().to(export)));
}
