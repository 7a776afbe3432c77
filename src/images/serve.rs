//! Serving stored images: to their owner, or to anyone once they are shown
//! on a visible community achievement. Anything else is a 404, so a guessed
//! name reveals nothing.

use actix_web::http::header::{self, CacheControl, CacheDirective, ETag, EntityTag};
use actix_web::{web, HttpResponse};

use super::model::StoredImage;
use crate::auth::extractors::MaybeUser;
use crate::db::{self};
use crate::error::AppError;
use crate::state::AppState;

async fn serve(
    path: web::Path<String>,
    thumb: bool,
    viewer: MaybeUser,
    state: &AppState,
) -> Result<HttpResponse, AppError> {
    let pool = &state.pool;
    let storage = &state.storage;
    let public_id = path.into_inner();
    if public_id.len() != 32 || !public_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::NotFound);
    }
    let viewer_id = viewer.0.map(|u| u.user.id);
    let storage = storage.clone();
    let found = db::run(pool, move |conn| {
        let Some(img) = StoredImage::find(conn, &public_id)? else { return Ok(None) };
        if !img.public && (img.owner_id.is_none() || img.owner_id != viewer_id) {
            return Ok(None);
        }
        let key = if thumb { &img.thumb_key } else { &img.storage_key };
        let bytes = storage.get(key).map_err(|e| AppError::Internal(e.into()))?;
        Ok(Some((img, bytes)))
    })
    .await?;
    let Some((img, bytes)) = found else { return Err(AppError::NotFound) };
    let visibility = if img.public { CacheDirective::Public } else { CacheDirective::Private };
    Ok(HttpResponse::Ok()
        .content_type(img.content_type.as_str())
        // The name is random and the content never changes under it.
        .insert_header(CacheControl(vec![
            visibility,
            CacheDirective::MaxAge(31_536_000),
            CacheDirective::Extension("immutable".into(), None),
        ]))
        .insert_header(ETag(EntityTag::new_strong(img.sha256)))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_DISPOSITION, "inline"))
        .body(bytes))
}

async fn full(
    path: web::Path<String>,
    viewer: MaybeUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    serve(path, false, viewer, &state).await
}

async fn thumbnail(
    path: web::Path<String>,
    viewer: MaybeUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    serve(path, true, viewer, &state).await
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/media/{public_id}").route(web::get().to(full)))
        .service(web::resource("/media/{public_id}/thumb").route(web::get().to(thumbnail)));
}
