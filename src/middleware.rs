//! Cross-cutting HTTP behaviour: security headers, body limits, request ids
//! and cache control for signed-in pages.

use actix_identity::IdentityExt;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::{DefaultHeaders, Next};
use actix_web::{web, HttpMessage, ResponseError};
use futures_util::StreamExt;
use tracing_actix_web::RequestId;

use crate::auth::csrf::{self, FormToken};
use crate::error::AppError;
use crate::settings::Settings;
use crate::state::AppState;

/// The Content-Security-Policy: no inline script or style anywhere
/// (everything comes from /static). Images may come from Steam's hosts:
/// game icons from the media host (`STEAM_MEDIA_URL`), achievement icons
/// and avatars from its CDNs. Forms post to the site itself, and the
/// "Sign in through Steam" form is redirected on to Steam's OpenID
/// provider, which `form-action` must allow too.
pub fn content_security_policy(settings: &Settings) -> String {
    let media = settings.steam_media_url.origin().ascii_serialization();
    let openid = settings.steam_openid_url.origin().ascii_serialization();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; \
         img-src 'self' data: {media} https://media.steampowered.com https://*.steamstatic.com \
         https://steamcdn-a.akamaihd.net; connect-src 'self'; font-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self' {openid}; frame-ancestors 'none'"
    )
}

/// Headers every response carries.
pub fn security_headers(settings: &Settings) -> DefaultHeaders {
    let mut headers = DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, content_security_policy(settings)))
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

/// Refuses a request whose declared body is over the limit before any
/// handler starts reading it. Chunked bodies are capped by the extractors'
/// own limits.
pub async fn reject_oversized_bodies(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let limit = req.app_data::<web::Data<AppState>>().map(|s| s.settings.max_body_bytes).unwrap_or(usize::MAX);
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

/// Largest urlencoded form any page accepts; uploads use multipart instead.
pub const FORM_LIMIT_BYTES: usize = 64 * 1024;

/// Why a request's input is refused before any handler sees it.
fn nul_refusal() -> AppError {
    AppError::BadRequest("Text cannot contain NUL characters (\\0). Remove them and try again.".into())
}

fn has_nul(s: &str) -> bool {
    s.contains('\0')
}

/// The budget a request body's buffer holds, released with the request.
struct HeldBody(#[allow(dead_code)] Option<tokio::sync::OwnedSemaphorePermit>);

/// Reads the whole body, refusing it with 413 past `limit` bytes whether or
/// not it declared its length (a chunked body declares none), with 408 past
/// `BODY_TIMEOUT_SECONDS`, and with 503 when the bodies held together would
/// pass `BODY_BUFFER_MB`.
async fn read_body(req: &mut ServiceRequest, limit: usize) -> Result<web::Bytes, AppError> {
    let state = req.app_data::<web::Data<AppState>>();
    let budget = state.map(|s| s.body_budget.clone());
    // A client sending its body a byte at a time holds its buffer no
    // longer than this.
    let deadline = state.map_or(std::time::Duration::from_secs(30), |s| s.settings.body_timeout);
    let mut payload = req.take_payload();
    let read = async {
        let mut body = web::BytesMut::new();
        let mut held: Option<tokio::sync::OwnedSemaphorePermit> = None;
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| AppError::BadRequest("The request body was interrupted.".into()))?;
            if body.len() + chunk.len() > limit {
                return Err(AppError::PayloadTooLarge);
            }
            // Room for what the body will hold, in whole KiB: a body sent a
            // byte at a time reserves no more than its size.
            let needed = (body.len() + chunk.len()).div_ceil(1024) - body.len().div_ceil(1024);
            if let (Some(budget), true) = (&budget, needed > 0) {
                let more = budget
                    .reserve(needed * 1024)
                    .await
                    .map_err(|_| AppError::Unavailable(anyhow::anyhow!("request body buffer budget exhausted")))?;
                match &mut held {
                    Some(h) => h.merge(more),
                    None => held = Some(more),
                }
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body.freeze(), held))
    };
    let (body, held) = tokio::time::timeout(deadline, read).await.map_err(|_| AppError::RequestTimeout)??;
    req.extensions_mut().insert(HeldBody(held));
    Ok(body)
}

/// The text fields of a multipart body (file fields are skipped: image
/// bytes may hold anything), checked for NUL, and its CSRF token.
async fn inspect_multipart(req: &ServiceRequest, body: web::Bytes) -> Result<Option<String>, AppError> {
    let mut form = actix_multipart::Multipart::new(
        req.headers(),
        futures_util::stream::once(async move { Ok::<_, actix_web::error::PayloadError>(body) }),
    );
    let mut token = None;
    while let Some(field) = form.next().await {
        let Ok(mut field) = field else { break };
        let is_file = field.content_disposition().and_then(|cd| cd.get_filename()).is_some();
        let name = field.name().map(str::to_owned);
        let mut value = Vec::new();
        while let Some(chunk) = field.next().await {
            let Ok(chunk) = chunk else { break };
            if !is_file {
                value.extend_from_slice(&chunk);
            }
        }
        if is_file {
            continue;
        }
        if value.contains(&0) {
            return Err(nul_refusal());
        }
        if name.as_deref() == Some(csrf::FIELD) && value.len() <= 256 {
            token = Some(String::from_utf8_lossy(&value).into_owned());
        }
    }
    Ok(token)
}

/// One check of everything a client types, before any handler runs:
/// PostgreSQL refuses text with a NUL byte, so a NUL anywhere in the path,
/// the query string or a form's text fields is a clear 400 here rather than
/// a 500 deep inside a query. Form bodies are read once, bounded (413 past
/// the limit, chunked or not), handed back to the handler, and their CSRF
/// token is left for the CSRF check.
pub async fn inspect_input(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let refused = |req: ServiceRequest, e: AppError| Ok(req.into_response(e.error_response()).map_into_right_body());
    let raw_path = req.uri().path();
    if raw_path.contains('\0') || raw_path.to_ascii_lowercase().contains("%00") {
        return refused(req, nul_refusal());
    }
    if url::form_urlencoded::parse(req.query_string().as_bytes()).any(|(k, v)| has_nul(&k) || has_nul(&v)) {
        return refused(req, nul_refusal());
    }
    if matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH | Method::DELETE) {
        let content_type =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let token = if content_type.starts_with("application/x-www-form-urlencoded") {
            let body = match read_body(&mut req, FORM_LIMIT_BYTES).await {
                Ok(b) => b,
                Err(e) => return refused(req, e),
            };
            let mut token = None;
            for (k, v) in url::form_urlencoded::parse(&body) {
                if has_nul(&k) || has_nul(&v) {
                    return refused(req, nul_refusal());
                }
                if k == csrf::FIELD {
                    token = Some(v.into_owned());
                }
            }
            req.set_payload(body.into());
            token
        } else if content_type.starts_with("multipart/form-data") {
            let limit = req.app_data::<web::Data<AppState>>().map(|s| s.settings.max_body_bytes).unwrap_or(usize::MAX);
            let body = match read_body(&mut req, limit).await {
                Ok(b) => b,
                Err(e) => return refused(req, e),
            };
            let token = match inspect_multipart(&req, body.clone()).await {
                Ok(t) => t,
                Err(e) => return refused(req, e),
            };
            req.set_payload(body.into());
            token
        } else {
            None
        };
        if let Some(token) = token {
            req.extensions_mut().insert(FormToken(token));
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Answers HEAD wherever GET works (load balancers and uptime checkers
/// use it): the request is routed as a GET, and the HTTP layer, which
/// remembers it was a HEAD, sends the headers without the body.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

/// The admin console does not advertise which of its addresses exist: a
/// wrong method on one of them is a 404 like any unknown address, not a 405.
pub async fn hide_admin_methods(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let res = next.call(req).await?;
    let path = res.request().path();
    let admin = path == "/admin" || path.starts_with("/admin/");
    if admin && res.status() == actix_web::http::StatusCode::METHOD_NOT_ALLOWED {
        let (req, _) = res.into_parts();
        return Ok(ServiceResponse::new(req, AppError::NotFound.error_response()).map_into_right_body());
    }
    Ok(res.map_into_left_body())
}
