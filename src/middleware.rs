//! Cross-cutting HTTP behaviour: security headers, body limits, request ids
//! and cache control for signed-in pages.

use actix_identity::IdentityExt;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{web, HttpMessage, ResponseError};
use tracing_actix_web::RequestId;

use crate::error::AppError;
use crate::settings::Settings;

/// No inline script or style anywhere: everything comes from /static.
/// Steam's CDNs are allowed for game and achievement icons.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data: https://*.steamstatic.com https://steamcdn-a.akamaihd.net; \
connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

/// Headers every response carries.
pub fn security_headers(settings: &Settings) -> DefaultHeaders {
    let mut headers = DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "strict-origin-when-cross-origin"))
        .add((
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
        ))
        .add((HeaderName::from_static("cross-origin-opener-policy"), "same-origin"));
    if settings.is_https() {
        // Only over HTTPS: sent over plain HTTP it would be ignored at best,
        // and at worst lock a misconfigured local install out of itself.
        headers = headers.add((header::STRICT_TRANSPORT_SECURITY, "max-age=63072000; includeSubDomains"));
    }
    headers
}

/// The body limit this server enforces, as app data for [`reject_oversized_bodies`].
#[derive(Clone, Copy)]
pub struct MaxBodyBytes(pub usize);

/// Refuses a request whose declared body is over the limit before any
/// handler starts reading it. Chunked bodies are capped by the extractors'
/// own limits.
pub async fn reject_oversized_bodies(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let limit = req.app_data::<web::Data<MaxBodyBytes>>().map(|m| m.0).unwrap_or(usize::MAX);
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        // Rendered here: this middleware sits outside the error-page handler
        // so that an oversized body is refused before sessions are loaded.
        let mut res = AppError::PayloadTooLarge.error_response();
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(req.into_response(res).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Echoes the request id that `TracingLogger` put on every log line, so a
/// user reporting a problem can quote it, and reports the time the app spent
/// as `Server-Timing` (browsers' dev tools and the benchmarks read it).
pub async fn request_id_header(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let id = req.extensions().get::<RequestId>().copied();
    let mut res = next.call(req).await?;
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id.to_string()).ok()) {
        res.headers_mut().insert(HeaderName::from_static("x-request-id"), value);
    }
    let timing = format!("app;dur={:.2}", started.elapsed().as_secs_f64() * 1000.0);
    if let Ok(value) = HeaderValue::from_str(&timing) {
        res.headers_mut().insert(HeaderName::from_static("server-timing"), value);
    }
    Ok(res)
}

/// Pages shown to a signed-in user hold their data; no cache (browser,
/// proxy, back button after logout) may keep them.
pub async fn no_store_when_signed_in(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let signed_in = req.get_identity().is_ok();
    let mut res = next.call(req).await?;
    // A response that set its own caching (immutable images) knows better.
    if signed_in && !res.headers().contains_key(header::CACHE_CONTROL) {
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}
