//! Goal files over HTTP: download one of your goals, and import one by
//! upload or paste (the format and its checks are in `goal_file`).

use actix_multipart::form::bytes::Bytes as FileField;
use actix_multipart::form::text::Text;
use actix_multipart::form::MultipartForm;
use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use actix_web_flash_messages::FlashMessage;
use askama::Template;

use super::goal_file::{self, export, read, Stored};
use crate::audit::RequestMeta;
use crate::auth::extractors::CurrentUser;
use crate::db;
use crate::error::AppError;
use crate::layout::PageContext;
use crate::response::{render, render_status, see_other};
use crate::state::AppState;

async fn download(
    current: CurrentUser,
    id: web::Path<i64>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (owner, id) = (current.user.id, id.into_inner());
    let source = state.settings.public_base_url.to_string();
    let (filename, doc) = db::run(&state.pool, move |conn| export(conn, owner, id, &source)).await?;
    let body = serde_json::to_vec_pretty(&doc).map_err(|e| AppError::Internal(e.into()))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(filename)],
        })
        .body(body))
}

#[derive(Template)]
#[template(path = "achievements/import.html")]
struct ImportPage {
    ctx: PageContext,
    error: Option<String>,
    pasted: String,
    /// Goals an account may keep.
    limit: i64,
    max_games: usize,
    max_achievements: usize,
}

impl ImportPage {
    fn new(ctx: PageContext, error: Option<String>, pasted: String, state: &AppState) -> Self {
        ImportPage {
            ctx,
            error,
            pasted,
            limit: state.settings.goals_per_account,
            max_games: super::condition::MAX_GAMES,
            max_achievements: super::condition::MAX_ACHIEVEMENTS,
        }
    }
}

async fn import_page(
    ctx: PageContext,
    _current: CurrentUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    render(&ImportPage::new(ctx, None, String::new(), &state))
}

/// A goal file, uploaded or pasted.
#[derive(MultipartForm)]
struct ImportForm {
    #[multipart(limit = "1 MiB")]
    file: Option<FileField>,
    json: Option<Text<String>>,
}

async fn import(
    ctx: PageContext,
    current: CurrentUser,
    form: MultipartForm<ImportForm>,
    meta: RequestMeta,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let pasted = form.json.map(|t| t.into_inner()).unwrap_or_default();
    let bytes = match form.file.filter(|f| !f.data.is_empty()) {
        Some(f) => f.data.to_vec(),
        None => pasted.clone().into_bytes(),
    };
    let refuse = |error: String, pasted: String| {
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &ImportPage::new(ctx.clone(), Some(error), pasted, &state))
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return refuse("Choose a goal file or paste its contents.".into(), pasted);
    }
    let incoming = match read(&bytes) {
        Ok(i) => i,
        Err(e) => return refuse(e, pasted),
    };
    let (owner, limit) = (current.user.id, state.settings.goals_per_account);
    let stored = goal_file::import(&state.pool, owner, incoming, limit, &meta).await?;
    let checked = match stored {
        Stored::Imported(checked) => checked,
        Stored::Full => return refuse(super::service::goals_full(limit), pasted),
    };
    let mut msg = "Goal imported.".to_owned();
    if !checked.unknown_games.is_empty() || !checked.unknown_achievements.is_empty() {
        msg.push_str(&format!(
            " This instance does not know {} game(s) and {} achievement(s) it names yet; they count once a sync brings them.",
            checked.unknown_games.len(),
            checked.unknown_achievements.len()
        ));
    }
    FlashMessage::success(msg).send();
    Ok(see_other("/achievements"))
}

/// Registers the routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/achievements/{id}/export").route(web::get().to(download)))
        .service(web::resource("/achievements/import").route(web::get().to(import_page)).route(web::post().to(import)));
}
