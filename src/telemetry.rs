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
