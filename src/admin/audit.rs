//! The audit log viewer: filters, pages, and CSV export of the same view.

use actix_web::{web, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};

use crate::audit::{self, AuditFilter};
use crate::auth::extractors::AdminUser;
use crate::db::{self};
use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::render;
use crate::state::AppState;

pub const PAGE_SIZE: i64 = 100;
/// Rows one CSV export carries at most.
pub const CSV_MAX_ROWS: i64 = 100_000;

impl AuditFilter {
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
    rows: Vec<audit::AuditRow>,
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
        db::run(pool, move |conn| audit::search(conn, &f, crate::pagination::offset(page, PAGE_SIZE), PAGE_SIZE))
            .await?;
    let pages = crate::pagination::page_count(total, PAGE_SIZE);
    render(&AuditPage { ctx, filter, rows, page, pages })
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
        let (rows, _) = audit::search(conn, &filter, 0, CSV_MAX_ROWS)?;
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
            w.write_record(record.iter().map(|c| crate::response::csv_cell(c).into_owned()))
                .map_err(|e| AppError::Internal(e.into()))?;
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
