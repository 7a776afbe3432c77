//! Synchronizer-token CSRF protection: one random token per session, put in
//! every form, checked by middleware on every state-changing request, so no
//! route can forget it.

use actix_session::SessionExt;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError};

use crate::error::AppError;
use crate::typed_session::AppSession;

/// The form field carrying the token.
pub const FIELD: &str = "csrf_token";
/// The header alternative, for scripts and multipart uploads.
pub const HEADER: &str = "x-csrf-token";

/// The CSRF token a form carried in its body, found by
/// `middleware::inspect_input` while it read the (bounded) body.
#[derive(Clone)]
pub struct FormToken(pub String);

/// Refuses any non-GET/HEAD/OPTIONS request whose token (form field or
/// header) does not match the session's.
pub async fn verify(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let expected = AppSession::from_session(req.get_session()).csrf_token();
    // The header, or the form field that `middleware::inspect_input` found
    // while it read the (bounded) body: urlencoded and multipart alike, so
    // upload forms need no script either.
    let provided = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.extensions().get::<FormToken>().map(|t| t.0.clone()));
    let valid = matches!((&expected, &provided), (Some(e), Some(p)) if crate::crypto::secrets_equal(p, e));
    if !valid && expected.is_none() && super::extractors::sessions_down(req.request()).await {
        // The token lives in the session, in Redis, which is down: not the
        // form's fault.
        let res = AppError::SessionsUnavailable.error_response();
        return Ok(req.into_response(res).map_into_right_body());
    }
    if !valid {
        tracing::warn!(path = %req.path(), "CSRF token missing or wrong");
        let res = AppError::Csrf.error_response();
        return Ok(req.into_response(res).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
