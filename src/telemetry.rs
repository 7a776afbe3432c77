//! Structured logging. Inside a request every line carries the request id,
//! because `TracingLogger` opens a span with it and the JSON layer prints the
//! current span's fields.

use tracing_subscriber::{fmt, EnvFilter};

use crate::settings::LogFormat;

/// Installs the global subscriber; `RUST_LOG` overrides the default level.
/// Calling it twice is harmless (tests spawn many apps in one process).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn,diesel_migrations=warn"));
    let result = match format {
        LogFormat::Json => fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .with_span_list(false)
            .flatten_event(true)
            .try_init(),
        LogFormat::Pretty => fmt().with_env_filter(filter).try_init(),
    };
    let _ = result;
}

/// The root span of every request: like tracing-actix-web's default, but the
/// path of a route that carries a secret (`{token}`) is logged as its
/// pattern, the query string is left out, and the client IP is the peer
/// address, or what a trusted proxy reported (never a header anyone can set).
pub struct RedactingRootSpan;

impl tracing_actix_web::RootSpanBuilder for RedactingRootSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage;
        let request_id =
            request.extensions().get::<tracing_actix_web::RequestId>().map(|id| id.to_string()).unwrap_or_default();
        let route = request.match_pattern().unwrap_or_else(|| "default".to_owned());
        let target = loggable_target(request.path(), &route);
        let client_ip = crate::client_ip::of_request(request.request()).map(|a| a.to_string()).unwrap_or_default();
        let user_agent =
            request.headers().get(actix_web::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.target = %target,
            http.client_ip = %client_ip,
            http.user_agent = %user_agent,
            request_id = %request_id,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        // "Sign in first" and "confirm your password" are errors to the
        // handler but redirects to the user: not worth an ERROR line.
        if let Ok(res) = outcome {
            if res.status().is_redirection() {
                span.record("http.status_code", res.status().as_u16());
                span.record("otel.status_code", "OK");
                return;
            }
        }
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span.clone(), outcome);
        let failed = match outcome {
            Ok(res) => res.response().error().map(|e| (e.as_response_error().status_code(), e.to_string())),
            Err(e) => Some((e.as_response_error().status_code(), e.to_string())),
        };
        if let Some((status, message)) = failed {
            let _in = span.enter();
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), "request failed: {message}");
            } else {
                tracing::warn!(status = status.as_u16(), "request refused: {message}");
            }
        }
    }
}

/// What a log line may show of a request path.
pub fn loggable_target(path: &str, route: &str) -> String {
    if route.contains("{token}") {
        route.to_owned()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::loggable_target;
    use std::sync::{Arc, Mutex};

    use actix_web::{web, App, HttpResponse};
    use tracing_actix_web::TracingLogger;

    use crate::error::AppError;

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    async fn logs_of(error: fn() -> AppError) -> (u16, String) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = actix_web::test::init_service(
            App::new()
                .wrap(TracingLogger::<super::RedactingRootSpan>::new())
                .route("/x", web::get().to(move || async move { Err::<HttpResponse, _>(error()) })),
        )
        .await;
        let res = actix_web::test::call_service(&app, actix_web::test::TestRequest::get().uri("/x").to_request()).await;
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        (res.status().as_u16(), text)
    }

    #[actix_web::test]
    async fn a_redirect_to_sign_in_is_not_logged_as_an_error_but_a_bug_is() {
        let (status, logs) = logs_of(|| AppError::LoginRequired { next: "/x".to_owned().into() }).await;
        assert_eq!(status, 303);
        assert!(!logs.contains("ERROR"), "{logs}");
        let (status, logs) = logs_of(|| AppError::Internal(anyhow::anyhow!("a bug"))).await;
        assert_eq!(status, 500);
        assert!(logs.contains("ERROR"), "the capture works: {logs}");
    }

    #[test]
    fn tokens_in_paths_never_reach_the_log() {
        assert_eq!(
            loggable_target("/password/reset/s3cr3t-token", "/password/reset/{token}"),
            "/password/reset/{token}"
        );
        assert_eq!(loggable_target("/account/sessions", "/account/sessions"), "/account/sessions");
    }
}
