//! Admin user management: search, page through, open one, and act on it.

use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;
use serde::Deserialize;

use super::service::{self, AccountAction};
use crate::account::view::AccountView;
use crate::audit::RequestMeta;
use crate::auth::extractors::AdminUser;
use crate::auth::reauth::require_recent_auth;
use crate::auth::session::UserSession;
use crate::db::{self, PgPool};
use crate::error::AppError;
use crate::layout::PageContext;
use crate::models::user::{Role, Status, User, UserRow};
use crate::response::{render, see_other};
use crate::state::AppState;

pub const PAGE_SIZE: i64 = 50;

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    q: Option<String>,
    page: Option<i64>,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct ListPage {
    ctx: PageContext,
    rows: Vec<UserRow>,
    q: String,
    page: i64,
    pages: i64,
    total: i64,
}

impl ListPage {
    fn page_link(&self, page: &i64) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("q", &self.q).append_pair("page", &page.to_string());
        format!("/admin/users?{}", s.finish())
    }
}

async fn list(
    ctx: PageContext,
    _admin: AdminUser,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let q: String = query.q.clone().unwrap_or_default().trim().chars().take(100).collect();
    let page = crate::pagination::page_number(query.page);
    let pattern = db::contains_pattern(&q);
    let rows: Vec<UserRow> = db::run(pool, move |conn| {
        Ok(User::search(conn, &pattern, PAGE_SIZE, crate::pagination::offset(page, PAGE_SIZE))?)
    })
    .await?;
    let total = rows.first().map(|r| r.total_rows).unwrap_or(0);
    let pages = crate::pagination::page_count(total, PAGE_SIZE);
    render(&ListPage { ctx, rows, q, page, pages, total })
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    ctx: PageContext,
    user: AccountView,
    sessions: Vec<UserSession>,
}

impl UserPage {
    fn actions(&self) -> Vec<(&'static str, &'static str, bool)> {
        actions_for(&self.user, self.sessions.len())
    }
}

async fn find(pool: &PgPool, id: i64) -> Result<User, AppError> {
    db::run(pool, move |conn| User::find(conn, id)?.ok_or(AppError::NotFound)).await
}

async fn show(
    ctx: PageContext,
    _admin: AdminUser,
    path: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let id = path.into_inner();
    let user = find(pool, id).await?;
    let sessions = db::run(pool, move |conn| Ok(UserSession::active_for_user(conn, id)?)).await?;
    render(&UserPage { ctx, user: AccountView::from(&user), sessions })
}

/// The actions that make sense for the account as it is now: (action,
/// button label, whether it is dangerous).
fn actions_for(user: &AccountView, sessions: usize) -> Vec<(&'static str, &'static str, bool)> {
    let mut out = Vec::new();
    out.push(if user.status == Status::Active { AccountAction::Lock } else { AccountAction::Unlock });
    if user.email.is_some() && user.email_verified_at.is_none() {
        out.push(AccountAction::Verify);
    }
    if user.has_totp() {
        out.push(AccountAction::Reset2fa);
    }
    if sessions > 0 {
        out.push(AccountAction::EndSessions);
    }
    out.push(if user.role == Role::Admin { AccountAction::MakeUser } else { AccountAction::MakeAdmin });
    out.into_iter().map(|a| (a.slug(), a.label(), a.dangerous())).collect()
}

#[derive(Deserialize)]
pub struct ConfirmQuery {
    action: String,
}

#[derive(Template)]
#[template(path = "admin/confirm.html")]
struct ConfirmPage {
    ctx: PageContext,
    user: AccountView,
    action: &'static str,
    label: &'static str,
    danger: bool,
    effect: &'static str,
}

/// Every action on an account is confirmed on a page of its own first.
async fn confirm(
    ctx: PageContext,
    _admin: AdminUser,
    path: web::Path<i64>,
    query: web::Query<ConfirmQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let user = AccountView::from(&find(&state.pool, id).await?);
    let sessions = db::run(&state.pool, move |conn| Ok(UserSession::active_for_user(conn, id)?.len())).await?;
    let Some((action, label, danger)) = actions_for(&user, sessions).into_iter().find(|(a, _, _)| *a == query.action)
    else {
        return Ok(see_other(&format!("/admin/users/{id}")));
    };
    let effect = AccountAction::parse(action).map_or("", AccountAction::effect);
    render(&ConfirmPage { ctx, user, action, label, danger, effect })
}

async fn act(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<(i64, String)>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let (id, name) = path.into_inner();
    let action = AccountAction::parse(&name).ok_or(AppError::NotFound)?;
    let back = format!("/admin/users/{id}");
    if action.sensitive() {
        require_recent_auth(&req, &back)?;
    }
    let user = find(pool, id).await?;
    let actor = admin.0.user.id;
    if actor == id && matches!(action, AccountAction::Lock | AccountAction::MakeUser | AccountAction::EndSessions) {
        FlashMessage::error("You cannot do that to your own account here.").send();
        return Ok(see_other(&back));
    }
    let message = service::act_on_account(pool, actor, user, action, &meta).await?;
    FlashMessage::success(message).send();
    Ok(see_other(&back))
}

#[derive(Deserialize)]
pub struct DeleteForm {
    confirm: String,
}

/// Deletes an account with everything it owns: library, unlocks, Steam
/// account, achievements and images (shared achievements stay, shown as
/// by a deleted user). The admin types the username to confirm.
async fn delete(
    req: HttpRequest,
    admin: AdminUser,
    path: web::Path<i64>,
    form: web::Form<DeleteForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let storage = &state.storage;
    let id = path.into_inner();
    let back = format!("/admin/users/{id}");
    require_recent_auth(&req, &back)?;
    let user = find(pool, id).await?;
    if admin.0.user.id == id {
        FlashMessage::error("You cannot delete your own account here.").send();
        return Ok(see_other(&back));
    }
    if form.confirm.trim() != user.username {
        FlashMessage::error("Type the username exactly to confirm the deletion.").send();
        return Ok(see_other(&back));
    }
    service::delete_account(pool, storage, admin.0.user.id, user, &meta).await?;
    FlashMessage::success("The account and its data are deleted.").send();
    Ok(see_other("/admin/users"))
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/admin/users").route(web::get().to(list)))
        .service(web::resource("/admin/users/{id}").route(web::get().to(show)))
        .service(web::resource("/admin/users/{id}/confirm").route(web::get().to(confirm)))
        .service(web::resource("/admin/users/{id}/delete").route(web::post().to(delete)))
        .service(web::resource("/admin/users/{id}/{action}").route(web::post().to(act)));
}
