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
/// address rather than a header anyone can set.
pub struct RedactingRootSpan;

impl tracing_actix_web::RootSpanBuilder for RedactingRootSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage;
        let request_id =
            request.extensions().get::<tracing_actix_web::RequestId>().map(|id| id.to_string()).unwrap_or_default();
        let route = request.match_pattern().unwrap_or_else(|| "default".to_owned());
        let target = loggable_target(request.path(), &route);
        let client_ip = request.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
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
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
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

    #[test]
    fn tokens_in_paths_never_reach_the_log() {
        assert_eq!(
            loggable_target("/password/reset/s3cr3t-token", "/password/reset/{token}"),
            "/password/reset/{token}"
        );
        assert_eq!(loggable_target("/account/sessions", "/account/sessions"), "/account/sessions");
    }
}
