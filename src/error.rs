//! The one error type of the web layer, and the templated pages every error
//! status is shown with.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use actix_web::HttpMessage;

use crate::layout::{PageContext, Viewer};

/// Where to send the user back after signing in or re-authenticating. It
/// holds the request's path and query string, which may carry search terms
/// or other private words, so its `Debug` (what the request log records for
/// an error) shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct ReturnTo(pub String);

impl std::fmt::Debug for ReturnTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReturnTo(<redacted>)")
    }
}

impl From<String> for ReturnTo {
    fn from(s: String) -> Self {
        ReturnTo(s)
    }
}

/// What a use case answers when the user may be refused for a reason they
/// can fix (a form's messages, a key Steam does not take): done, or
/// refused with what to show. Failures are [`AppError`]s, never this.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T, R = Vec<String>> {
    /// It was done; nothing more to say but this.
    Done(T),
    /// Nothing was written; show the user this.
    Refused(R),
}

impl<T, R> From<Result<T, R>> for Outcome<T, R> {
    fn from(r: Result<T, R>) -> Self {
        match r {
            Ok(t) => Outcome::Done(t),
            Err(r) => Outcome::Refused(r),
        }
    }
}

/// Everything a request handler can fail with. Each variant maps to one
/// status code and a friendly page; internals are logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request was malformed; the message is safe to show.
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("forbidden")]
    Forbidden,
    /// Refused, with a reason that is safe to show.
    #[error("denied: {0}")]
    Denied(String),
    /// The CSRF token was missing or did not match the session's.
    #[error("CSRF check failed")]
    Csrf,
    /// The page needs a signed-in user; answered with a redirect to sign in.
    #[error("login required")]
    LoginRequired {
        /// Where to come back to after signing in.
        next: ReturnTo,
    },
    /// A sensitive change needs the password (and code) again first.
    #[error("re-authentication required")]
    ReauthRequired {
        /// Where to come back to afterwards.
        next: ReturnTo,
    },
    #[error("not found")]
    NotFound,
    #[error("payload too large")]
    PayloadTooLarge,
    /// The request's body did not arrive in time.
    #[error("request timeout")]
    RequestTimeout,
    #[error("too many requests")]
    TooManyRequests {
        /// Seconds until the client may try again (sent as `Retry-After`).
        retry_after_secs: u64,
    },
    /// A dependency (database, Redis) is down or saturated.
    #[error("service unavailable: {0}")]
    Unavailable(#[source] anyhow::Error),
    /// A statement ran past the requests' time limit and was cancelled.
    #[error("took too long: {0}")]
    TooSlow(#[source] anyhow::Error),
    /// The site is in maintenance mode (admins still get in).
    #[error("maintenance mode")]
    Maintenance,
    /// Redis, where sessions live, is down: a signed-in page (or any form)
    /// cannot be served for a moment.
    #[error("sessions unavailable")]
    SessionsUnavailable,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// Wraps a pool checkout failure: the database is down or every
    /// connection is busy, which is a 503 rather than a bug.
    pub fn database_unavailable(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        AppError::Unavailable(anyhow::Error::new(e).context("database connection"))
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        match e {
            diesel::result::Error::NotFound => AppError::NotFound,
            // PostgreSQL went away under a pooled connection: the "back
            // soon" page, not the one for a bug.
            e if is_lost_connection(&e) => AppError::Unavailable(anyhow::Error::new(e).context("database connection")),
            e if is_statement_timeout(&e) => AppError::TooSlow(anyhow::Error::new(e)),
            // Text PostgreSQL cannot store (a NUL that reached a query, an
            // escape jsonb refuses) is the sender's mistake, not a bug.
            e if is_unstorable_text(&e) => {
                tracing::warn!(error = %e, "refused text PostgreSQL cannot store");
                AppError::BadRequest("The text sent contains a character that cannot be stored (a NUL byte).".into())
            }
            other => AppError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<crate::typed_session::SessionWriteError> for AppError {
    fn from(e: crate::typed_session::SessionWriteError) -> Self {
        AppError::Internal(anyhow::Error::new(e))
    }
}

/// Whether a diesel error means the connection to PostgreSQL is gone (the
/// server stopped, restarted or dropped it) rather than a wrong query.
pub fn is_lost_connection(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => true,
        Error::DatabaseError(_, info) => {
            let message = info.message();
            [
                "terminating connection",
                "server closed the connection",
                "no connection to the server",
                "connection to server",
                "the database system is shutting down",
                "the database system is starting up",
            ]
            .iter()
            .any(|m| message.contains(m))
        }
        _ => false,
    }
}

/// Whether PostgreSQL cancelled the statement for running past
/// `statement_timeout` (SQLSTATE 57014 reads the same for a cancel).
fn is_statement_timeout(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(_, info) if info.message().contains("statement timeout"))
}

/// Whether PostgreSQL refused text it cannot store: a NUL byte, or the
/// `\u0000` escape inside JSON.
fn is_unstorable_text(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(_, info)
        if info.message().contains("invalid byte sequence for encoding")
            || info.message().contains("unsupported Unicode escape sequence"))
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Forbidden | AppError::Csrf | AppError::Denied(_) => StatusCode::FORBIDDEN,
            AppError::LoginRequired { .. } | AppError::ReauthRequired { .. } => StatusCode::SEE_OTHER,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) | AppError::SessionsUnavailable | AppError::Maintenance | AppError::TooSlow(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            AppError::Internal(e) => tracing::error!(error = ?e, "internal error"),
            AppError::Unavailable(e) => tracing::warn!(error = ?e, "dependency unavailable"),
            AppError::TooSlow(e) => tracing::warn!(error = %e, "a request ran past its time limit"),
            _ => {}
        }
        let status = self.status_code();
        let redirect = match self {
            AppError::LoginRequired { next } => Some(("/login", next)),
            AppError::ReauthRequired { next } => Some(("/account/reauth", next)),
            _ => None,
        };
        if let Some((page, next)) = redirect {
            let next: String = url::form_urlencoded::byte_serialize(next.0.as_bytes()).collect();
            return HttpResponse::SeeOther().insert_header((header::LOCATION, format!("{page}?next={next}"))).finish();
        }
        let detail = match self {
            AppError::BadRequest(msg) | AppError::Denied(msg) => Some(msg.clone()),
            AppError::Csrf => {
                Some("The form has expired or was sent from another site. Reload the page and try again.".to_owned())
            }
            AppError::RequestTimeout => {
                Some("The form took too long to arrive, so it was not read. Nothing was saved: try again.".to_owned())
            }
            AppError::TooSlow(_) => Some(
                "This page took longer than its time limit to work out, so it was stopped. \
                 Try again in a moment; if it keeps happening, tell the instance's admin."
                    .to_owned(),
            ),
            AppError::SessionsUnavailable => Some(
                "Signing in is briefly unavailable. Nothing is lost: reload the page in a minute and carry on."
                    .to_owned(),
            ),
            AppError::TooManyRequests { retry_after_secs } => {
                Some(format!("Try again {}.", wait_words(*retry_after_secs)))
            }
            _ => None,
        };
        let mut res = HttpResponse::build(status);
        if let AppError::TooManyRequests { retry_after_secs } = self {
            res.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.insert_header((header::RETRY_AFTER, "30"));
        }
        let kind = if matches!(self, AppError::Maintenance) { PageKind::Maintenance } else { PageKind::Error };
        let mut res = res.content_type(mime_html()).body(render_error_body(status, detail.clone(), kind));
        // The error middleware renders it again with the signed-in user's
        // navigation, which this type cannot see.
        res.extensions_mut().insert(Rendered { detail, kind });
        res
    }
}

fn mime_html() -> HeaderValue {
    HeaderValue::from_static("text/html; charset=utf-8")
}

/// "In 40 seconds", "in 3 minutes": how long a limit lasts, in words.
fn wait_words(secs: u64) -> String {
    match secs {
        0..=1 => "in a second".to_owned(),
        2..=90 => format!("in {secs} seconds"),
        91..=5400 => format!("in {} minutes", secs.div_ceil(60)),
        _ => format!("in {} hours", secs.div_ceil(3600)),
    }
}

/// Which page an error shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    Error,
    /// The maintenance page: it says so, and links nowhere the gate closes.
    Maintenance,
}

/// What an error response was rendered from, kept on the response.
#[derive(Debug, Clone)]
struct Rendered {
    detail: Option<String>,
    kind: PageKind,
}

/// The error page shown for every 4xx and 5xx status.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub ctx: PageContext,
    pub status: u16,
    pub title: &'static str,
    pub message: &'static str,
    pub detail: Option<String>,
    pub maintenance: bool,
}

fn describe(status: StatusCode) -> (&'static str, &'static str) {
    match status.as_u16() {
        400 => ("Bad request", "We could not understand that request. Check what you entered and try again."),
        401 | 403 => ("Not allowed", "You do not have permission to see this page."),
        404 => ("Page not found", "There is nothing here. The link may be old, or the page may have moved."),
        405 => ("Method not allowed", "This address does not accept that kind of request."),
        408 => ("Request timed out", "The request took too long to arrive. Please try again."),
        413 => ("Upload too large", "What you sent is larger than we accept. Try a smaller file."),
        415 => ("Unsupported content", "We cannot read that kind of content here."),
        429 => ("Slow down", "You have made too many requests. Please wait a little and try again."),
        503 => ("Temporarily unavailable", "Questline cannot serve this right now. Please try again in a minute."),
        s if s >= 500 => {
            ("Something went wrong", "An unexpected error occurred on our side. It has been logged; please try again.")
        }
        _ => ("Request failed", "We could not complete that request."),
    }
}

/// Renders the error page for `status` as an HTML string, for a visitor.
pub fn render_error_body(status: StatusCode, detail: Option<String>, kind: PageKind) -> String {
    render_error_for(PageContext::anonymous(), status, detail, kind)
}

fn render_error_for(ctx: PageContext, status: StatusCode, detail: Option<String>, kind: PageKind) -> String {
    let (title, message) = match kind {
        PageKind::Maintenance => (
            "Down for maintenance",
            "Questline is closed for maintenance for a short while. Your data is safe; please come back soon.",
        ),
        PageKind::Error => describe(status),
    };
    let maintenance = kind == PageKind::Maintenance;
    let page = ErrorPage { ctx, status: status.as_u16(), title, message, detail, maintenance };
    page.render().unwrap_or_else(|e| {
        // A template that fails to render must not turn an error page into a panic.
        tracing::error!(error = %e, "rendering the error page failed");
        format!("<!doctype html><title>{title}</title><h1>{title}</h1>")
    })
}

/// Replaces the bodies of error responses made outside our handlers (actix's
/// own 404/405/413, extractor failures) with the templated page. Responses
/// that are already HTML or JSON are ours and pass through untouched.
pub fn render_error_page<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let already_rendered = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html") || ct.starts_with("application/json"));
    let status = res.status();
    let viewer = res.request().extensions().get::<Viewer>().cloned().filter(|v| v.user.is_some());
    let rendered = res.response().extensions().get::<Rendered>().cloned();
    let (detail, kind) = match (already_rendered, rendered, viewer.is_some()) {
        // Ours, for a visitor (or JSON): as it is.
        (true, None, _) | (true, _, false) => return Ok(ErrorHandlerResponse::Response(res.map_into_left_body())),
        // Ours, for a signed-in user: again, with their navigation.
        (true, Some(r), true) => (r.detail, r.kind),
        (false, _, _) => (None, PageKind::Error),
    };
    let ctx = match viewer {
        Some(v) => PageContext::for_request(v, res.request()),
        None => PageContext::anonymous(),
    };
    let (req, res) = res.into_parts();
    let mut res = res.set_body(BoxBody::new(render_error_for(ctx, status, detail, kind)));
    res.headers_mut().insert(header::CONTENT_TYPE, mime_html());
    res.headers_mut().remove(header::CONTENT_LENGTH);
    let res: ServiceResponse<EitherBody<B, BoxBody>> = ServiceResponse::new(req, res).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::middleware::ErrorHandlers;
    use actix_web::{test, web, App};

    async fn body_of(status: u16) -> (StatusCode, String, Option<String>) {
        let app = test::init_service(App::new().wrap(ErrorHandlers::new().default_handler(render_error_page)).route(
            "/plain/{code}",
            web::get().to(|code: web::Path<u16>| async move {
                HttpResponse::build(StatusCode::from_u16(*code).unwrap()).finish()
            }),
        ))
        .await;
        let req = test::TestRequest::get().uri(&format!("/plain/{status}")).to_request();
        let res = test::call_service(&app, req).await;
        let status = res.status();
        let ct = res.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
        let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
        (status, body, ct)
    }

    #[actix_web::test]
    async fn every_error_status_gets_a_friendly_templated_page() {
        for (code, words) in [
            (400, "Bad request"),
            (403, "Not allowed"),
            (404, "Page not found"),
            (405, "Method not allowed"),
            (413, "Upload too large"),
            (429, "Slow down"),
            (500, "Something went wrong"),
            (503, "Temporarily unavailable"),
        ] {
            let (status, body, ct) = body_of(code).await;
            assert_eq!(status.as_u16(), code);
            assert_eq!(ct.as_deref(), Some("text/html; charset=utf-8"));
            assert!(body.contains(words), "{code}: {body}");
            assert!(body.contains("<nav"), "{code} page lacks the layout");
        }
    }

    #[actix_web::test]
    async fn internal_errors_never_show_their_cause() {
        let app = test::init_service(App::new().route(
            "/boom",
            web::get().to(|| async {
                Err::<HttpResponse, _>(AppError::Internal(anyhow::anyhow!("secret table xyz exploded")))
            }),
        ))
        .await;
        let res = test::call_service(&app, test::TestRequest::get().uri("/boom").to_request()).await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
        assert!(body.contains("Something went wrong"));
        assert!(!body.contains("xyz"));
    }

    #[actix_web::test]
    async fn the_debug_text_of_a_sign_in_redirect_hides_the_query_string() {
        let err = AppError::LoginRequired { next: ReturnTo("/library?q=my-secret-search".into()) };
        let debug = format!("{err:?}");
        assert!(!debug.contains("my-secret-search"), "{debug}");
        assert!(!format!("{err}").contains("my-secret-search"));
    }

    #[actix_web::test]
    async fn too_many_requests_carries_retry_after() {
        let app = test::init_service(App::new().route(
            "/limited",
            web::get().to(|| async { Err::<HttpResponse, _>(AppError::TooManyRequests { retry_after_secs: 42 }) }),
        ))
        .await;
        let res = test::call_service(&app, test::TestRequest::get().uri("/limited").to_request()).await;
        assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "42");
    }

    #[actix_web::test]
    async fn json_error_responses_are_left_alone() {
        let app = test::init_service(App::new().wrap(ErrorHandlers::new().default_handler(render_error_page)).route(
            "/j",
            web::get().to(|| async { HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "down"})) }),
        ))
        .await;
        let res = test::call_service(&app, test::TestRequest::get().uri("/j").to_request()).await;
        let body = test::read_body(res).await;
        assert_eq!(&body[..], br#"{"status":"down"}"#);
    }
}
