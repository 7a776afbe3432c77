//! Typed configuration, read once from the environment and passed to the app
//! as data. Nothing else in the crate reads environment variables.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use url::Url;

/// Minimum decoded length of `SESSION_SECRET`: actix's cookie key needs 64 bytes.
pub const SESSION_SECRET_BYTES: usize = 64;
/// Exact decoded length of `MASTER_KEY`: a 256-bit AEAD key.
pub const MASTER_KEY_BYTES: usize = 32;

/// Whether the app runs for development or for real users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// Log output shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for log shippers.
    Json,
    /// Human-readable lines, for a terminal.
    Pretty,
}

/// Everything the app needs to know about its surroundings.
#[derive(Clone)]
pub struct Settings {
    pub environment: Environment,
    pub bind_address: SocketAddr,
    /// The URL users reach the app at; links in emails are built from it,
    /// never from the request's Host header.
    pub public_base_url: Url,
    pub database_url: SecretString,
    pub database_pool_size: u32,
    /// A streaming replica that pages which only read use while it is
    /// current (`DATABASE_REPLICA_URL`); none by default.
    pub database_replica_url: Option<SecretString>,
    /// How far behind the primary the replica may fall before every read
    /// goes to the primary (`REPLICA_MAX_LAG_SECONDS`).
    pub replica_max_lag: std::time::Duration,
    /// On SIGTERM, how long requests and jobs in flight get to finish
    /// before jobs still running go back to the queue.
    pub shutdown_grace: std::time::Duration,
    /// Bytes of computed pages (a library page, a user's stats…) each
    /// process keeps in memory, weighed as they are kept; 0 turns the page
    /// cache off.
    pub page_cache_bytes: u64,
    /// Bytes of request bodies held in memory at once, across requests
    /// (never less than one body of `max_body_bytes`).
    pub body_buffer_bytes: usize,
    /// How long a request's form body may take to arrive, in all.
    pub body_timeout: std::time::Duration,
    /// Goals one account may keep (its own, imported and taken up alike).
    pub goals_per_account: i64,
    /// The longest one statement of a request may run before it is
    /// cancelled and the visitor gets a "took too long" page.
    pub request_statement_timeout: std::time::Duration,
    /// Apply pending migrations when `serve` starts.
    pub run_migrations: bool,
    /// Run the job and email workers inside `serve` (off when dedicated
    /// `questline worker` processes do that work).
    pub run_worker: bool,
    pub redis_url: SecretString,
    /// Prefix of every Redis key the app writes, so several deployments (or
    /// test runs) can share one Redis.
    pub redis_namespace: String,
    /// Signs and encrypts cookies.
    pub session_secret: SecretSlice<u8>,
    /// Encrypts Steam API keys and TOTP secrets at rest.
    pub master_key: SecretSlice<u8>,
    /// Stored beside each ciphertext so keys can be rotated.
    pub master_key_id: String,
    /// `smtp://user:pass@host:port` or `smtps://...`; `None` uses the file mailer.
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
    /// Where the file mailer writes messages when `SMTP_URL` is unset.
    pub mail_dir: PathBuf,
    /// Per-IP requests a minute: sign-in, registration, password reset (and
    /// verification resends).
    pub login_per_minute: u32,
    pub register_per_minute: u32,
    pub reset_per_minute: u32,
    pub steam_api_base_url: Url,
    /// Where game icons are served from (Steam's media host; the fake
    /// Steam server in tests and the demo). Its origin is allowed in the
    /// Content-Security-Policy's `img-src`.
    pub steam_media_url: Url,
    /// Steam Web API calls allowed per key per UTC day (Steam allows 100,000).
    pub steam_daily_call_budget: u64,
    /// Steam's OpenID provider ("Sign in through Steam"); the fake Steam's
    /// in tests and the demo.
    pub steam_openid_url: Url,
    /// The instance's own Steam Web API key, used for users who gave none
    /// (an admin may set one on the Steam admin page instead, which wins).
    pub steam_api_key: Option<SecretString>,
    /// Calls a day each user synced with the instance key may make: their
    /// fair share of its budget.
    pub steam_shared_calls_per_user: u64,
    pub upload_dir: PathBuf,
    /// Audit entries older than this many days are deleted by the worker.
    pub audit_retention_days: u32,
    /// Bearer token for `/metrics` from other hosts (loopback needs none).
    pub metrics_token: Option<SecretString>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (see
    /// `crate::client_ip`); empty, the peer address is the client's.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Bytes of stored images (originals and thumbnails) each user may hold.
    pub upload_quota_bytes: u64,
    pub static_dir: PathBuf,
    /// Requests with a larger declared body are refused with 413 before any
    /// handler reads them.
    pub max_body_bytes: usize,
    pub log_format: LogFormat,
}

impl fmt::Debug for Settings {
    // Secrets are left out by construction: `SecretBox` prints as redacted,
    // and URLs that may carry passwords are not printed at all.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("environment", &self.environment)
            .field("bind_address", &self.bind_address)
            .field("public_base_url", &self.public_base_url.as_str())
            .field("database_pool_size", &self.database_pool_size)
            .field("database_replica", &self.database_replica_url.as_ref().map(|_| "configured"))
            .field("replica_max_lag", &self.replica_max_lag)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("page_cache_bytes", &self.page_cache_bytes)
            .field("body_buffer_bytes", &self.body_buffer_bytes)
            .field("body_timeout", &self.body_timeout)
            .field("goals_per_account", &self.goals_per_account)
            .field("request_statement_timeout", &self.request_statement_timeout)
            .field("run_migrations", &self.run_migrations)
            .field("redis_namespace", &self.redis_namespace)
            .field("master_key_id", &self.master_key_id)
            .field("smtp", &self.smtp_url.as_ref().map(|_| "configured"))
            .field("mail_from", &self.mail_from)
            .field("mail_dir", &self.mail_dir)
            .field("login_per_minute", &self.login_per_minute)
            .field("register_per_minute", &self.register_per_minute)
            .field("reset_per_minute", &self.reset_per_minute)
            .field("steam_api_base_url", &self.steam_api_base_url.as_str())
            .field("steam_media_url", &self.steam_media_url.as_str())
            .field("steam_daily_call_budget", &self.steam_daily_call_budget)
            .field("steam_openid_url", &self.steam_openid_url.as_str())
            .field("steam_api_key", &self.steam_api_key.as_ref().map(|_| "configured"))
            .field("steam_shared_calls_per_user", &self.steam_shared_calls_per_user)
            .field("upload_dir", &self.upload_dir)
            .field("upload_quota_bytes", &self.upload_quota_bytes)
            .field("audit_retention_days", &self.audit_retention_days)
            .field("static_dir", &self.static_dir)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("log_format", &self.log_format)
            .finish_non_exhaustive()
    }
}

/// Every problem found in the environment, so an operator fixes them in one go.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct SettingsError {
    pub problems: Vec<String>,
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Self::from_lookup(|key| vars.get(key).cloned())
    }

    /// Builds settings from any key/value source; tests pass a map instead of
    /// mutating the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let mut problems = Vec::new();
        let get = |key: &str| get(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());

        let environment = match get("QUESTLINE_ENV").as_deref() {
            None | Some("production") => Environment::Production,
            Some("development") => Environment::Development,
            Some(other) => {
                problems.push(format!("QUESTLINE_ENV is `{other}`; use `production` or `development`"));
                Environment::Production
            }
        };

        let bind_address = parse_or(&get, "BIND_ADDRESS", "127.0.0.1:8080", &mut problems, |v| {
            v.parse::<SocketAddr>().map_err(|e| e.to_string())
        });
        let public_base_url = parse_or(&get, "PUBLIC_BASE_URL", "http://127.0.0.1:8080", &mut problems, parse_http_url);
        let steam_api_base_url =
            parse_or(&get, "STEAM_API_BASE_URL", "https://api.steampowered.com", &mut problems, parse_http_url);
        let steam_media_url =
            parse_or(&get, "STEAM_MEDIA_URL", "https://media.steampowered.com", &mut problems, parse_http_url);

        let database_url = required(&get, "DATABASE_URL", "postgres://USER@HOST:5432/questline", &mut problems);
        let redis_url = required(&get, "REDIS_URL", "redis://127.0.0.1:6379", &mut problems);

        let database_pool_size =
            parse_or(&get, "DATABASE_POOL_SIZE", "10", &mut problems, |v| match v.parse::<u32>() {
                Ok(n) if (1..=200).contains(&n) => Ok(n),
                _ => Err("must be a whole number from 1 to 200".into()),
            });
        let database_replica_url = get("DATABASE_REPLICA_URL").map(SecretString::from);
        for (key, url) in [("DATABASE_URL", &database_url), ("DATABASE_REPLICA_URL", &database_replica_url)] {
            if let Some(Err(e)) = url.as_ref().map(|u| check_postgres_url(u.expose_secret())) {
                problems.push(format!("{key} is invalid: {e}"));
            }
        }
        let replica_max_lag =
            parse_or(&get, "REPLICA_MAX_LAG_SECONDS", "5", &mut problems, |v| match v.parse::<u64>() {
                Ok(n) if (1..=3600).contains(&n) => Ok(std::time::Duration::from_secs(n)),
                _ => Err("must be a whole number of seconds from 1 to 3600".into()),
            });
        let shutdown_grace = parse_or(&get, "SHUTDOWN_GRACE_SECONDS", "8", &mut problems, |v| match v.parse::<u64>() {
            Ok(n) if n <= 3600 => Ok(std::time::Duration::from_secs(n)),
            _ => Err("must be a whole number of seconds from 0 to 3600".into()),
        });
        let page_cache_bytes = parse_or(&get, "PAGE_CACHE_MB", "64", &mut problems, |v| match v.parse::<u64>() {
            Ok(n) if n <= 65_536 => Ok(n * 1024 * 1024),
            _ => Err("must be a whole number of megabytes from 0 to 65536".into()),
        });
        let body_buffer_bytes = parse_or(&get, "BODY_BUFFER_MB", "64", &mut problems, |v| match v.parse::<usize>() {
            Ok(n) if (1..=65_536).contains(&n) => Ok(n * 1024 * 1024),
            _ => Err("must be a whole number of megabytes from 1 to 65536".into()),
        });
        let body_timeout = parse_or(&get, "BODY_TIMEOUT_SECONDS", "30", &mut problems, |v| match v.parse::<u64>() {
            Ok(n) if (1..=600).contains(&n) => Ok(std::time::Duration::from_secs(n)),
            _ => Err("must be a whole number of seconds from 1 to 600".into()),
        });
        let goals_per_account = parse_or(&get, "GOALS_PER_ACCOUNT", "200", &mut problems, |v| match v.parse::<i64>() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(n),
            _ => Err("must be a whole number from 1 to 10000".into()),
        });
        let request_statement_timeout =
            parse_or(&get, "REQUEST_STATEMENT_TIMEOUT_MS", "10000", &mut problems, |v| match v.parse::<u64>() {
                Ok(n) if (100..=600_000).contains(&n) => Ok(std::time::Duration::from_millis(n)),
                _ => Err("must be a whole number of milliseconds from 100 to 600000".into()),
            });
        let run_migrations = parse_or(&get, "RUN_MIGRATIONS", "true", &mut problems, parse_bool);
        let run_worker = parse_or(&get, "RUN_WORKER", "true", &mut problems, parse_bool);
        let max_body_bytes = parse_or(&get, "MAX_BODY_BYTES", "6291456", &mut problems, |v| match v.parse::<usize>() {
            Ok(n) if n >= 1024 => Ok(n),
            _ => Err("must be a whole number of bytes, at least 1024".into()),
        });
        let per_minute = |v: &str| match v.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err("must be a whole number, at least 1".to_owned()),
        };
        let login_per_minute = parse_or(&get, "RATE_LIMIT_LOGIN_PER_MINUTE", "5", &mut problems, per_minute);
        let register_per_minute = parse_or(&get, "RATE_LIMIT_REGISTER_PER_MINUTE", "3", &mut problems, per_minute);
        let reset_per_minute = parse_or(&get, "RATE_LIMIT_RESET_PER_MINUTE", "3", &mut problems, per_minute);
        let steam_daily_call_budget =
            parse_or(&get, "STEAM_DAILY_CALL_BUDGET", "90000", &mut problems, |v| match v.parse::<u64>() {
                Ok(n) if (1..=100_000).contains(&n) => Ok(n),
                _ => Err("must be a whole number from 1 to 100000 (Steam's own daily limit)".to_owned()),
            });
        let steam_openid_url = parse_or(
            &get,
            "STEAM_OPENID_URL",
            "https://steamcommunity.com/openid/login",
            &mut problems,
            parse_http_url,
        );
        let steam_api_key = match get("STEAM_API_KEY").map(|k| crate::steam_ids::valid_api_key(&k)) {
            None => None,
            Some(Ok(k)) => Some(SecretString::from(k)),
            Some(Err(_)) => {
                problems.push("STEAM_API_KEY is invalid: a Steam Web API key is 32 hexadecimal characters".into());
                None
            }
        };
        let steam_shared_calls_per_user =
            parse_or(&get, "STEAM_SHARED_CALLS_PER_USER", "5000", &mut problems, |v| match v.parse::<u64>() {
                Ok(n) if (1..=100_000).contains(&n) => Ok(n),
                _ => Err("must be a whole number from 1 to 100000".to_owned()),
            });
        let upload_quota_bytes =
            parse_or(&get, "UPLOAD_QUOTA_BYTES", "52428800", &mut problems, |v| match v.parse::<u64>() {
                Ok(n) if n >= 1024 => Ok(n),
                _ => Err("must be a whole number of bytes, at least 1024".to_owned()),
            });
        let audit_retention_days =
            parse_or(&get, "AUDIT_RETENTION_DAYS", "365", &mut problems, |v| match v.parse::<u32>() {
                Ok(n) if (1..=36_500).contains(&n) => Ok(n),
                _ => Err("must be a whole number of days from 1 to 36500".to_owned()),
            });
        let trusted_proxies = parse_or(&get, "TRUSTED_PROXIES", "", &mut problems, crate::client_ip::parse_trusted);
        let metrics_token = get("METRICS_TOKEN").filter(|t| !t.is_empty()).map(SecretString::from);
        let log_format = parse_or(&get, "LOG_FORMAT", "json", &mut problems, |v| match v {
            "json" => Ok(LogFormat::Json),
            "pretty" => Ok(LogFormat::Pretty),
            _ => Err("use `json` or `pretty`".into()),
        });

        let session_secret = secret_bytes(&get, "SESSION_SECRET", SESSION_SECRET_BYTES, false, &mut problems);
        let master_key = secret_bytes(&get, "MASTER_KEY", MASTER_KEY_BYTES, true, &mut problems);
        let master_key_id = get("MASTER_KEY_ID").unwrap_or_else(|| "k1".to_owned());
        if !master_key_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') || master_key_id.len() > 32
        {
            problems.push("MASTER_KEY_ID must be at most 32 letters, digits, `-` or `_`".into());
        }

        let redis_namespace = get("REDIS_NAMESPACE").unwrap_or_else(|| "questline".to_owned());
        let smtp_url = get("SMTP_URL").map(SecretString::from);
        let mail_from = get("MAIL_FROM").unwrap_or_else(|| "Questline <noreply@localhost>".to_owned());
        let mail_dir = PathBuf::from(get("MAIL_DIR").unwrap_or_else(|| "var/mail".to_owned()));
        let upload_dir = PathBuf::from(get("UPLOAD_DIR").unwrap_or_else(|| "var/uploads".to_owned()));
        let static_dir = PathBuf::from(get("STATIC_DIR").unwrap_or_else(|| "static".to_owned()));

        if !problems.is_empty() {
            return Err(SettingsError { problems });
        }
        Ok(Settings {
            environment,
            bind_address: bind_address.expect("checked above"),
            public_base_url: public_base_url.expect("checked above"),
            database_url: database_url.expect("checked above"),
            database_pool_size: database_pool_size.expect("checked above"),
            page_cache_bytes: page_cache_bytes.expect("checked above"),
            body_buffer_bytes: body_buffer_bytes.expect("checked above").max(max_body_bytes.expect("checked above")),
            body_timeout: body_timeout.expect("checked above"),
            goals_per_account: goals_per_account.expect("checked above"),
            request_statement_timeout: request_statement_timeout.expect("checked above"),
            database_replica_url,
            replica_max_lag: replica_max_lag.expect("checked above"),
            shutdown_grace: shutdown_grace.expect("checked above"),
            run_migrations: run_migrations.expect("checked above"),
            run_worker: run_worker.expect("checked above"),
            redis_url: redis_url.expect("checked above"),
            redis_namespace,
            session_secret: session_secret.expect("checked above"),
            master_key: master_key.expect("checked above"),
            master_key_id,
            smtp_url,
            mail_from,
            mail_dir,
            login_per_minute: login_per_minute.expect("checked above"),
            register_per_minute: register_per_minute.expect("checked above"),
            reset_per_minute: reset_per_minute.expect("checked above"),
            steam_api_base_url: steam_api_base_url.expect("checked above"),
            steam_media_url: steam_media_url.expect("checked above"),
            steam_daily_call_budget: steam_daily_call_budget.expect("checked above"),
            steam_openid_url: steam_openid_url.expect("checked above"),
            steam_api_key,
            steam_shared_calls_per_user: steam_shared_calls_per_user.expect("checked above"),
            upload_dir,
            upload_quota_bytes: upload_quota_bytes.expect("checked above"),
            audit_retention_days: audit_retention_days.expect("checked above"),
            metrics_token,
            trusted_proxies: trusted_proxies.expect("checked above"),
            static_dir,
            max_body_bytes: max_body_bytes.expect("checked above"),
            log_format: log_format.expect("checked above"),
        })
    }

    /// True when cookies must carry the `Secure` flag and HSTS is sent.
    pub fn is_https(&self) -> bool {
        self.public_base_url.scheme() == "https"
    }

    /// An absolute link to `path` on the public URL (never the Host header).
    pub fn public_url(&self, path: &str) -> String {
        let base = self.public_base_url.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    /// The session secret as raw bytes, for building cookie keys.
    pub fn session_secret_bytes(&self) -> &[u8] {
        self.session_secret.expose_secret()
    }
}

fn parse_http_url(v: &str) -> Result<Url, String> {
    let url = Url::parse(v).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(url)
}

/// A PostgreSQL connection string: a `postgres://` URL or libpq's
/// `key=value` pairs. The value itself is never echoed: it may hold a
/// password.
fn check_postgres_url(v: &str) -> Result<(), String> {
    if !v.contains("://") {
        if v.contains('=') {
            return Ok(());
        }
        return Err("must be a postgres:// URL or libpq `key=value` pairs".into());
    }
    match Url::parse(v) {
        Ok(url) if matches!(url.scheme(), "postgres" | "postgresql") => Ok(()),
        Ok(url) => Err(format!("must be a postgres:// URL, not {}://", url.scheme())),
        Err(e) => Err(format!("is not a valid URL ({e})")),
    }
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("use `true` or `false`".into()),
    }
}

fn parse_or<T>(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: &str,
    problems: &mut Vec<String>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Option<T> {
    let raw = get(key).unwrap_or_else(|| default.to_owned());
    match parse(&raw) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(format!("{key} is invalid: {e}"));
            None
        }
    }
}

fn required(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    example: &str,
    problems: &mut Vec<String>,
) -> Option<SecretString> {
    match get(key) {
        Some(v) => Some(SecretString::from(v)),
        None => {
            problems.push(format!("{key} is not set (for example `{key}={example}`)"));
            None
        }
    }
}

/// Decodes a base64 secret and refuses short or obviously weak ones.
fn secret_bytes(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    len: usize,
    exact: bool,
    problems: &mut Vec<String>,
) -> Option<SecretSlice<u8>> {
    let how = format!("make one with `questline generate-secrets` or `head -c {len} /dev/urandom | base64 -w0`");
    let Some(raw) = get(key) else {
        problems.push(format!("{key} is not set: {how}"));
        return None;
    };
    let bytes = match base64::engine::general_purpose::STANDARD.decode(raw.as_bytes()) {
        Ok(b) => b,
        Err(_) => {
            problems.push(format!("{key} is not valid base64: {how}"));
            return None;
        }
    };
    let wrong_len = if exact { bytes.len() != len } else { bytes.len() < len };
    if wrong_len {
        let want = if exact { format!("exactly {len}") } else { format!("at least {len}") };
        problems.push(format!("{key} decodes to {} bytes, {want} are needed: {how}", bytes.len()));
        return None;
    }
    if is_weak(&bytes) {
        problems.push(format!("{key} looks weak (too few distinct bytes): {how}"));
        return None;
    }
    Some(SecretSlice::from(bytes))
}

/// Random 32+ byte strings almost never repeat bytes much; a secret typed by
/// hand ("aaaa…", a repeated phrase) does. 16 distinct values out of 32 is far
/// below what `/dev/urandom` yields (about 28) and far above a typed secret.
fn is_weak(bytes: &[u8]) -> bool {
    let mut seen = [false; 256];
    for b in bytes {
        seen[*b as usize] = true;
    }
    seen.iter().filter(|s| **s).count() < 16
}

/// Fresh random secrets in `.env` syntax.
pub fn generate_secrets() -> String {
    use rand::RngCore;
    let mut session = vec![0u8; SESSION_SECRET_BYTES];
    let mut master = vec![0u8; MASTER_KEY_BYTES];
    rand::rng().fill_bytes(&mut session);
    rand::rng().fill_bytes(&mut master);
    let b64 = base64::engine::general_purpose::STANDARD;
    format!("SESSION_SECRET={}\nMASTER_KEY={}\n", b64.encode(session), b64.encode(master))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> HashMap<String, String> {
        let secrets = generate_secrets();
        let mut map: HashMap<String, String> =
            secrets.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        map.insert("DATABASE_URL".into(), "postgres://localhost/q".into());
        map.insert("REDIS_URL".into(), "redis://localhost".into());
        map
    }

    fn load(map: &HashMap<String, String>) -> Result<Settings, SettingsError> {
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_only_required_values_are_set() {
        let s = load(&base()).unwrap();
        assert_eq!(s.bind_address.to_string(), "127.0.0.1:8080");
        assert_eq!(s.environment, Environment::Production);
        assert!(!s.is_https());
    }

    #[test]
    fn every_missing_secret_is_named_with_how_to_make_one() {
        let mut map = base();
        map.remove("SESSION_SECRET");
        map.remove("MASTER_KEY");
        map.remove("DATABASE_URL");
        let err = load(&map).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("SESSION_SECRET is not set"), "{text}");
        assert!(text.contains("MASTER_KEY is not set"), "{text}");
        assert!(text.contains("DATABASE_URL is not set"), "{text}");
        assert!(text.contains("questline generate-secrets"), "{text}");
    }

    #[test]
    fn short_and_repetitive_secrets_are_refused() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut map = base();
        map.insert("SESSION_SECRET".into(), b64.encode([7u8; 16]));
        map.insert("MASTER_KEY".into(), b64.encode([b'a'; 32]));
        let text = load(&map).unwrap_err().to_string();
        assert!(text.contains("SESSION_SECRET decodes to 16 bytes"), "{text}");
        assert!(text.contains("MASTER_KEY looks weak"), "{text}");
    }

    #[test]
    fn debug_output_never_contains_secrets() {
        let map = base();
        let s = load(&map).unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains(&map["SESSION_SECRET"]));
        assert!(!shown.contains(&map["MASTER_KEY"]));
        assert!(!shown.contains("postgres://"));
    }

    #[test]
    fn a_replica_url_that_is_not_postgres_is_refused_without_echoing_it() {
        let mut map = base();
        map.insert("DATABASE_REPLICA_URL".into(), "redis://:hunter2hunter2@replica:6379".into());
        let err = load(&map).unwrap_err().to_string();
        assert!(err.contains("DATABASE_REPLICA_URL is invalid: must be a postgres:// URL, not redis://"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        map.insert("DATABASE_REPLICA_URL".into(), "replica.internal".into());
        assert!(load(&map).unwrap_err().to_string().contains("DATABASE_REPLICA_URL is invalid"));
    }

    #[test]
    fn a_shutdown_grace_that_is_not_a_small_whole_number_of_seconds_is_refused() {
        let mut map = base();
        for bad in ["-1", "8s", "3601", "99999999999999999999999", "1\u{7}"] {
            map.insert("SHUTDOWN_GRACE_SECONDS".into(), bad.into());
            let err = load(&map).unwrap_err().to_string();
            assert!(
                err.contains("SHUTDOWN_GRACE_SECONDS is invalid: must be a whole number of seconds from 0 to 3600"),
                "{bad}: {err}"
            );
        }
        map.insert("SHUTDOWN_GRACE_SECONDS".into(), "0".into());
        assert_eq!(load(&map).unwrap().shutdown_grace, std::time::Duration::ZERO);
    }

    #[test]
    fn postgres_urls_and_libpq_pairs_are_accepted() {
        let mut map = base();
        for url in [
            "postgresql://q:pw@replica:5432/questline",
            "postgres:///questline?host=/run/postgresql",
            "host=replica dbname=questline",
        ] {
            map.insert("DATABASE_REPLICA_URL".into(), url.into());
            assert!(load(&map).is_ok(), "{url}");
        }
    }

    #[test]
    fn a_non_http_public_url_is_refused() {
        let mut map = base();
        map.insert("PUBLIC_BASE_URL".into(), "ftp://example.com".into());
        assert!(load(&map).unwrap_err().to_string().contains("PUBLIC_BASE_URL is invalid"));
    }
}
