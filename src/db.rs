//! PostgreSQL pool, embedded migrations and the bridge that keeps blocking
//! diesel calls off the async workers.

use std::time::Duration;

use anyhow::Context;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel::RunQueryDsl;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use secrecy::ExposeSecret;

use crate::error::AppError;
use crate::settings::Settings;

/// A pool of PostgreSQL connections.
pub type PgPool = Pool<ConnectionManager<PgConnection>>;
/// One connection checked out of [`PgPool`].
pub type PgPooled = PooledConnection<ConnectionManager<PgConnection>>;

/// The migrations under `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Any fixed number works; it only has to be the same for every instance so
/// two servers starting together do not migrate at once.
const MIGRATION_LOCK_KEY: i64 = 0x5155_4553_544c_494e; // "QUESTLIN"

/// Builds the pool without connecting, so a server can start (and report
/// "not ready") while PostgreSQL is still coming up.
pub fn build_pool(settings: &Settings) -> PgPool {
    let manager = ConnectionManager::<PgConnection>::new(settings.database_url.expose_secret());
    Pool::builder()
        .max_size(settings.database_pool_size)
        .connection_timeout(Duration::from_secs(5))
        // No `SELECT 1` before every checkout: it doubled the statements of
        // every page. A dead connection fails its query instead, r2d2 drops
        // it, and the request gets a 503 it can retry.
        .test_on_check_out(false)
        .build_unchecked(manager)
}

/// Names of the migrations this binary has that the database lacks. Reads
/// only: diesel's own check would create its bookkeeping table, and a dry
/// run must not write even that.
pub fn pending_migrations(conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    use diesel::migration::{Migration as _, MigrationSource};
    use diesel::sql_types::{Bool, Text};
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = Bool)]
        found: bool,
    }
    #[derive(diesel::QueryableByName)]
    struct Version {
        #[diesel(sql_type = Text)]
        version: String,
    }
    let all = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map_err(|e| anyhow::anyhow!("reading the embedded migrations: {e}"))?;
    let bookkept = diesel::sql_query("SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS found")
        .get_result::<Exists>(conn)?
        .found;
    let applied: std::collections::HashSet<String> = if bookkept {
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<Version>(conn)?
            .into_iter()
            .map(|v| v.version)
            .collect()
    } else {
        Default::default()
    };
    Ok(all
        .iter()
        .filter(|m| !applied.contains(&m.name().version().to_string()))
        .map(|m| m.name().to_string())
        .collect())
}

/// Applies pending migrations under an advisory lock and returns their names.
pub fn run_migrations(conn: &mut PgConnection) -> anyhow::Result<Vec<String>> {
    diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        .execute(conn)
        .context("taking the migration lock")?;
    let result = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|applied| applied.iter().map(|m| m.to_string()).collect())
        .map_err(|e| anyhow::anyhow!("applying migrations: {e}"));
    // Unlock even when a migration failed, or a retry in this session would wait forever.
    let unlock = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
        .execute(conn)
        .context("releasing the migration lock");
    let applied = result?;
    unlock?;
    Ok(applied)
}

/// Runs `f` with a pooled connection on the blocking thread pool.
///
/// Diesel is synchronous; calling it on an async worker would stall every
/// other request that worker serves.
pub async fn run<T, F>(pool: &PgPool, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut PgConnection) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get().map_err(AppError::database_unavailable)?;
        f(&mut conn)
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("blocking pool: {e}")))?
}

/// Runs `f` with a pooled connection on tokio's blocking pool, for
/// background workers (request handlers use [`run`], which maps errors to
/// [`AppError`]).
pub async fn blocking<T: Send + 'static>(
    pool: &PgPool,
    f: impl FnOnce(&mut PgConnection) -> diesel::QueryResult<T> + Send + 'static,
) -> anyhow::Result<T> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get()?;
        Ok(f(&mut conn)?)
    })
    .await?
}

/// A `LIKE`/`ILIKE` pattern matching `search` anywhere, with the wildcards a
/// user typed (`%`, `_`, `\\`) taken literally.
pub fn contains_pattern(search: &str) -> String {
    format!("%{}%", search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"))
}
