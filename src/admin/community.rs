//! Community moderation: hide a shared achievement from the list (and its
//! image from visitors), or restore it.

use actix_web::{web, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Timestamptz};

use crate::audit::{AuditEvent, RequestMeta};
use crate::auth::extractors::AdminUser;
use crate::db::{self};
use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::{render, see_other};
use crate::schema::community_achievements;
use crate::state::AppState;

/// One shared achievement as moderators see it, hidden ones included.
#[derive(Debug, QueryableByName)]
pub struct ModerationRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub description: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub creator: Option<String>,
    #[diesel(sql_type = Integer)]
    pub tries_count: i32,
    #[diesel(sql_type = Bool)]
    pub is_active: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub hidden_at: Option<DateTime<Utc>>,
}

#[derive(Template)]
#[template(path = "admin/community.html")]
struct ModerationPage {
    ctx: PageContext,
    rows: Vec<ModerationRow>,
}

async fn list(ctx: PageContext, _admin: AdminUser, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let rows = db::run(pool, |conn| {
        Ok(diesel::sql_query(
            "SELECT c.id, c.name, c.description, u.username AS creator, c.tries_count, c.is_active, c.hidden_at
             FROM community_achievements c LEFT JOIN users u ON u.id = c.creator_id
             ORDER BY c.shared_at DESC, c.id DESC LIMIT 200",
        )
        .load(conn)?)
    })
    .await?;
    render(&ModerationPage { ctx, rows })
}

async fn set_hidden(
    admin: AdminUser,
    path: web::Path<(i64, String)>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let (id, action) = path.into_inner();
    let hide = match action.as_str() {
        "hide" => true,
        "restore" => false,
        _ => return Err(AppError::NotFound),
    };
    let actor = admin.0.user.id;
    db::run(pool, move |conn| {
        conn.transaction(|conn| {
            let n = diesel::update(community_achievements::table.find(id))
                .set((
                    community_achievements::hidden_at.eq(hide.then(Utc::now)),
                    community_achievements::hidden_by.eq(hide.then_some(actor)),
                ))
                .execute(conn)?;
            if n == 0 {
                return Err(AppError::NotFound);
            }
            AuditEvent::new("admin", if hide { "hide_shared" } else { "restore_shared" }, &meta)
                .actor(actor)
                .target_text(id.to_string())
                .record(conn)?;
            Ok(())
        })
    })
    .await?;
    FlashMessage::success(if hide { "Hidden from the community." } else { "Restored to the community." }).send();
    Ok(see_other("/admin/community"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/community").route(web::get().to(list)))
        .service(web::resource("/admin/community/{id}/{action}").route(web::post().to(set_hidden)));
}
