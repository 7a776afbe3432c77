//! Synchronizer-token CSRF protection: one random token per session, put in
//! every form, checked by middleware on every state-changing request, so no
//! route can forget it.

use actix_session::{Session, SessionExt};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};
use base64::Engine;
use rand::RngCore;

use crate::error::AppError;
use crate::middleware::MaxBodyBytes;

const SESSION_KEY: &str = "csrf";
/// The form field carrying the token.
pub const FIELD: &str = "csrf_token";
/// The header alternative, for scripts and multipart uploads.
pub const HEADER: &str = "x-csrf-token";

/// The session's token, created on first use.
pub fn token(session: &Session) -> Result<String, AppError> {
    if let Ok(Some(t)) = session.get::<String>(SESSION_KEY) {
        return Ok(t);
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    session.insert(SESSION_KEY, &t).map_err(|e| AppError::Internal(anyhow::anyhow!("storing the CSRF token: {e}")))?;
    Ok(t)
}

/// Reads the whole multipart body (at most the configured body limit), puts
/// it back, and returns the value of its `csrf_token` field if any.
async fn multipart_token(req: &mut ServiceRequest) -> Result<Option<String>, AppError> {
    use actix_web::HttpMessage;
    use futures_util::StreamExt;
    let limit = req.app_data::<web::Data<MaxBodyBytes>>().map(|m| m.0).unwrap_or(usize::MAX);
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| AppError::BadRequest("The upload was interrupted.".into()))?;
        if body.len() + chunk.len() > limit {
            return Err(AppError::PayloadTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let mut token = None;
    let stream_body = body.clone();
    let mut form = actix_multipart::Multipart::new(
        req.headers(),
        futures_util::stream::once(async move { Ok::<_, actix_web::error::PayloadError>(stream_body) }),
    );
    while let Some(Ok(mut field)) = form.next().await {
        let is_token = field.name() == Some(FIELD);
        let mut value = Vec::new();
        while let Some(Ok(chunk)) = field.next().await {
            if is_token && value.len() < 256 {
                value.extend_from_slice(&chunk);
            }
        }
        if is_token {
            token = Some(String::from_utf8_lossy(&value).into_owned());
            break;
        }
    }
    req.set_payload(body.into());
    Ok(token)
}

/// Refuses any non-GET/HEAD/OPTIONS request whose token (form field or
/// header) does not match the session's.
pub async fn verify(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let expected: Option<String> = req.get_session().get(SESSION_KEY).ok().flatten();
    let mut provided = req.headers().get(HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let content_type =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    if provided.is_none() && content_type.starts_with("multipart/form-data") {
        // Upload forms carry the token as a field too (no script needed):
        // buffer the body, which the global body limit already bounds, find
        // the field, and hand the body back to the handler.
        match multipart_token(&mut req).await {
            Ok(token) => provided = token,
            Err(e) => return Ok(req.into_response(e.error_response()).map_into_right_body()),
        }
    }
    if provided.is_none() && is_form {
        // Read the (size-limited) form, take the token, and put the body back
        // for the handler's own extractor.
        match req.extract::<web::Bytes>().await {
            Ok(body) => {
                provided = url::form_urlencoded::parse(&body).find(|(k, _)| k == FIELD).map(|(_, v)| v.into_owned());
                req.set_payload(body.into());
            }
            Err(_) => {
                let res = AppError::BadRequest("The form could not be read.".into()).error_response();
                return Ok(req.into_response(res).map_into_right_body());
            }
        }
    }
    let valid = matches!((&expected, &provided), (Some(e), Some(p)) if crate::crypto::secrets_equal(p, e));
    if !valid {
        tracing::warn!(path = %req.path(), "CSRF token missing or wrong");
        let res = AppError::Csrf.error_response();
        return Ok(req.into_response(res).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
