//! Wiring: builds the pool, Redis, the middleware stack and the HTTP server.

use std::net::TcpListener;
use std::time::Duration;

use actix_identity::IdentityMiddleware;
use actix_session::config::{CookieContentSecurity, PersistentSession, TtlExtensionPolicy};
use actix_session::SessionMiddleware;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::middleware::{from_fn, DefaultHeaders, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use actix_web_flash_messages::storage::CookieMessageStore;
use actix_web_flash_messages::{FlashMessagesFramework, Level};
use anyhow::Context;
use tracing_actix_web::TracingLogger;

use crate::auth::session_store::NamespacedSessionStore;
use crate::cache::Redis;
use crate::db::{self, PgPool};
use crate::email::delivery::SendEmail;
use crate::email::Mailer;
use crate::error::{render_error_page, AppError};
use crate::jobs::kind::Registry;
use crate::jobs::schedule::Task;
use crate::jobs::worker::Workers;
use crate::middleware::{self as mw, FORM_LIMIT_BYTES};
use crate::settings::Environment;
use crate::settings::Settings;
use crate::state::AppState;
use actix_multipart::form::MultipartFormConfig;

/// The kinds of job this application runs.
pub fn job_kinds(settings: &Settings) -> anyhow::Result<Registry> {
    let mailer = Mailer::from_settings(settings)?;
    Ok(Registry::default()
        .register(SendEmail::new(mailer, settings.mail_from.clone()))
        .register(crate::steam::sync::SteamSyncJob))
}

/// Files younger than this may belong to an upload still in flight.
const STRAY_FILE_GRACE: Duration = Duration::from_secs(3600);

/// The housekeeping the elected process runs.
pub fn housekeeping() -> Vec<Task> {
    vec![
        Task {
            name: "queue daily resyncs",
            every: Duration::from_secs(600),
            run: |_, conn| Ok(crate::jobs::enqueue_daily_resyncs(conn)?),
        },
        Task {
            name: "queue weekly digests",
            every: Duration::from_secs(3600),
            run: |state, conn| crate::profiles::digest::queue_due(conn, &state.settings, chrono::Utc::now()),
        },
        Task {
            name: "purge old audit entries",
            every: Duration::from_secs(3600),
            run: |state, conn| Ok(crate::audit::purge_older_than(conn, state.settings.audit_retention_days)?),
        },
        Task {
            // Accounts deleted by cascade leave image files nobody uses.
            name: "remove unused image files",
            every: Duration::from_secs(3600),
            run: |state, conn| Ok(crate::images::model::sweep_orphans(conn, state.storage.as_ref(), None)),
        },
        Task {
            name: "remove stray image files",
            every: Duration::from_secs(3600),
            run: |state, conn| {
                Ok(crate::images::model::sweep_stray_files(conn, state.storage.as_ref(), STRAY_FILE_GRACE)?)
            },
        },
    ]
}

/// Starts the job worker (one loop per kind) and the scheduler on the
/// current runtime; the job loops stop through the returned handle (or with
/// the runtime). `serve` runs them beside the web server unless
/// `RUN_WORKER=false`; `worker` runs them alone.
pub fn spawn_workers(state: &web::Data<AppState>) -> anyhow::Result<Workers> {
    let registry = job_kinds(&state.settings)?;
    let state = state.clone().into_inner();
    let workers = crate::jobs::worker::spawn(state.clone(), &registry);
    actix_web::rt::spawn(crate::jobs::schedule::run(state, housekeeping()));
    Ok(workers)
}

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    pool: PgPool,
    /// This process's job loops, when it runs them (`RUN_WORKER`).
    workers: Option<Workers>,
    shutdown_grace: Duration,
}

impl Application {
    /// Connects to the dependencies, applies migrations when configured, and
    /// binds `BIND_ADDRESS` (port 0 picks a free one).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind(settings.bind_address).with_context(|| format!("binding {}", settings.bind_address))?;
        Self::build_with_listener(settings, listener).await
    }

    /// Like [`Application::build`] on a listener the caller already bound, so
    /// tests can put the real port into `PUBLIC_BASE_URL` before start.
    pub async fn build_with_listener(settings: Settings, listener: TcpListener) -> anyhow::Result<Self> {
        let pool = db::build_request_pool(&settings);
        if settings.run_migrations {
            let pool = pool.clone();
            let applied = web::block(move || -> anyhow::Result<Vec<String>> {
                let mut conn = pool.get().context("connecting to PostgreSQL (DATABASE_URL)")?;
                crate::models::migrate(&mut conn)
            })
            .await??;
            for name in applied {
                tracing::info!(migration = %name, "applied migration");
            }
        }
        let redis = Redis::connect(&settings).await.context("connecting to Redis (REDIS_URL)")?;
        let session_store = NamespacedSessionStore::new(redis.clone());
        // Fails before anything starts when the mail settings are unusable.
        job_kinds(&settings)?;
        let state = web::Data::new(AppState::new(settings, pool.clone(), redis));
        state.reads.spawn_probe(state.settings.replica_max_lag);
        let workers = if state.settings.run_worker { Some(spawn_workers(&state)?) } else { None };

        let port = listener.local_addr()?.port();
        let shutdown_grace = state.settings.shutdown_grace;
        let server = run(listener, state, session_store)?;
        Ok(Application { port, server, pool, workers, shutdown_grace })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The app's pool (tests use it to inspect the database).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves until SIGTERM or SIGINT, then stops as a deploy needs: it
    /// takes no new connection, and requests and jobs in flight get
    /// `SHUTDOWN_GRACE_SECONDS` to finish, together; jobs still running then
    /// go back to the queue for another worker.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Application { server, workers, shutdown_grace, .. } = self;
        let handle = server.handle();
        tokio::pin!(server);
        tokio::select! {
            served = &mut server => return served,
            () = crate::shutdown::requested() => {}
        }
        // Joined, not raced: the server is done once its requests are, and
        // must not cut short the jobs still finishing beside it (and the
        // server future itself must be polled for the stop to proceed).
        tracing::info!(grace_seconds = shutdown_grace.as_secs(), "stopping: finishing requests and jobs in flight");
        let jobs = async move {
            match workers {
                Some(workers) => workers.shut_down(shutdown_grace).await,
                None => 0,
            }
        };
        let (served, (), handed_back) = tokio::join!(&mut server, handle.stop(true), jobs);
        tracing::info!(jobs_handed_back = handed_back, "stopped");
        served
    }
}

/// A field over its limit (the image's 5 MB) is a 413 page; any other
/// unreadable upload form, a 400 one.
fn multipart_error(err: actix_multipart::MultipartError) -> AppError {
    use actix_multipart::MultipartError as E;
    match err {
        E::Payload(actix_web::error::PayloadError::Overflow) => AppError::PayloadTooLarge,
        E::Field { source, .. }
            if source.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            AppError::PayloadTooLarge
        }
        other => AppError::BadRequest(format!("The form could not be read: {other}.")),
    }
}

fn run(
    listener: TcpListener,
    state: web::Data<AppState>,
    session_store: NamespacedSessionStore,
) -> anyhow::Result<Server> {
    let settings = &state.settings;
    let key = Key::derive_from(settings.session_secret_bytes());
    let https = settings.is_https();
    let static_dir = settings.static_dir.clone();
    let body_limit = settings.max_body_bytes;
    let development = settings.environment == Environment::Development;
    let shutdown_grace = settings.shutdown_grace.as_secs();
    let trusted_proxies = web::Data::new(crate::client_ip::TrustedProxies(settings.trusted_proxies.clone()));
    actix_web::rt::spawn(state.maintenance.clone().refresh_forever(state.redis.clone()));

    let server = HttpServer::new(move || {
        let session = SessionMiddleware::builder(session_store.clone(), key.clone())
            .cookie_name(crate::typed_session::SESSION_COOKIE.to_owned())
            .cookie_secure(https)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_content_security(CookieContentSecurity::Private)
            // Redis keeps state up to the longest session ("remember me");
            // shorter limits (idle, absolute) are enforced by the registry.
            .session_lifecycle(
                PersistentSession::default()
                    .session_ttl(actix_web::cookie::time::Duration::days(14))
                    .session_ttl_extension_policy(TtlExtensionPolicy::OnStateChanges),
            )
            .build();
        let flashes = FlashMessagesFramework::builder(CookieMessageStore::builder(key.clone()).build())
            .minimum_level(Level::Info)
            .build();

        App::new()
            .app_data(state.clone())
            .app_data(trusted_proxies.clone())
            .app_data(
                MultipartFormConfig::default()
                    .total_limit(body_limit)
                    .memory_limit(body_limit)
                    .error_handler(|err, _| multipart_error(err).into()),
            )
            .app_data(web::FormConfig::default().limit(FORM_LIMIT_BYTES).error_handler(|err, _| form_error(err).into()))
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|err, _| AppError::BadRequest(format!("invalid query: {err}")).into()),
            )
            .service(
                web::scope("/static")
                    .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "public, max-age=86400")))
                    .service(actix_files::Files::new("", static_dir.clone()).prefer_utf8(true)),
            )
            .configure(crate::health::routes)
            .configure(crate::home::routes)
            .configure(crate::dashboard::routes)
            .configure(crate::auth::routes)
            .configure(crate::account::routes)
            .configure(crate::steam::routes)
            .configure(crate::achievements::routes)
            .configure(crate::achievements::shared::routes)
            .configure(crate::images::routes)
            .configure(crate::admin::routes)
            .configure(crate::rarity::routes::routes)
            .configure(crate::profiles::routes::routes)
            .configure(crate::pins::routes::routes)
            .configure(crate::metrics::routes::routes)
            .configure(|cfg| {
                if development {
                    crate::email::mailbox::routes(cfg);
                }
            })
            .default_service(web::to(|| async { Err::<actix_web::HttpResponse, _>(AppError::NotFound) }))
            // Order matters: the last `wrap` sees the request first.
            .wrap(from_fn(crate::admin::maintenance::gate))
            .wrap(from_fn(crate::auth::extractors::load_viewer))
            .wrap(from_fn(crate::auth::csrf::verify))
            .wrap(from_fn(mw::no_store_when_signed_in))
            .wrap(IdentityMiddleware::default())
            .wrap(session)
            .wrap(flashes)
            .wrap(from_fn(mw::inspect_input))
            .wrap(ErrorHandlers::new().default_handler(render_error_page))
            .wrap(from_fn(mw::hide_admin_methods))
            .wrap(from_fn(mw::head_as_get))
            .wrap(from_fn(mw::reject_oversized_bodies))
            .wrap(mw::security_headers(&state.settings))
            .wrap(from_fn(mw::request_id_header))
            .wrap(from_fn(crate::metrics::routes::track))
            .wrap(TracingLogger::<crate::telemetry::RedactingRootSpan>::new())
    })
    .keep_alive(KEEP_ALIVE)
    // Signals are handled in `run_until_stopped`, which stops the job loops
    // alongside the server.
    .disable_signals()
    .shutdown_timeout(shutdown_grace)
    .listen(listener)?
    .run();
    Ok(server)
}

/// How long an idle keep-alive connection stays open. Longer than a
/// reverse proxy's own idle limit (nginx's upstream `keepalive_timeout`,
/// 60 s), so the proxy always closes first: when the node closed first
/// (actix's default is 5 s), a request the proxy sent at that instant got
/// a 502 that nginx may not retry for a POST (seen in the fault test).
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(75);

fn form_error(err: actix_web::error::UrlencodedError) -> AppError {
    use actix_web::error::UrlencodedError;
    match err {
        UrlencodedError::Overflow { .. } => AppError::PayloadTooLarge,
        other => AppError::BadRequest(format!("the form could not be read: {other}")),
    }
}
