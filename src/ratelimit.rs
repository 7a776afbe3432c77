//! Fixed-window request limits counted in Redis, so they hold across every
//! app instance.

use std::time::Duration;

use crate::audit::RequestMeta;
use crate::cache::Redis;
use crate::error::AppError;
use crate::settings::Settings;

/// A named limit: at most `max` hits per `window`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub name: &'static str,
    pub max: u32,
    pub window: Duration,
}

/// Counts one hit for `key` (an IP, an account id) and refuses it with 429
/// once the window's budget is spent. Counted in Redis, so the limit holds
/// across instances; while Redis is down, counted in this process instead
/// (never a free pass, never a wait).
pub async fn hit(redis: &Redis, limit: Limit, key: &str) -> Result<(), AppError> {
    let redis_key = redis.key(&format!("rl:{}:{}", limit.name, key));
    let window = limit.window.as_secs().max(1);
    let counted = redis
        .call(|mut c| {
            let redis_key = redis_key.clone();
            async move {
                redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(&redis_key)
                    .arg(0)
                    .arg("EX")
                    .arg(window)
                    .arg("NX")
                    .ignore()
                    .cmd("INCR")
                    .arg(&redis_key)
                    .cmd("TTL")
                    .arg(&redis_key)
                    .query_async::<(u64, i64)>(&mut c)
                    .await
            }
        })
        .await;
    let (count, retry_after) = match counted {
        Ok((count, ttl)) => (count, ttl.max(1) as u64),
        Err(_) => redis.fallback.hit(&redis_key, limit.window),
    };
    if count > u64::from(limit.max) {
        tracing::info!(limit = limit.name, "rate limit reached");
        return Err(AppError::TooManyRequests { retry_after_secs: retry_after });
    }
    Ok(())
}

/// The per-IP, per-minute limits on the account pages.
#[derive(Debug, Clone, Copy)]
pub enum PerIp {
    /// Sign-in and every other password or code check (2FA step,
    /// re-authentication, turning 2FA off).
    Login,
    Register,
    /// Password reset requests.
    Reset,
    /// "Send the confirmation link again".
    VerifyResend,
}

/// Counts one hit of `kind` for the request's IP.
pub async fn per_ip(redis: &Redis, settings: &Settings, kind: PerIp, meta: &RequestMeta) -> Result<(), AppError> {
    let (name, max) = match kind {
        PerIp::Login => ("login", settings.login_per_minute),
        PerIp::Register => ("register", settings.register_per_minute),
        PerIp::Reset => ("reset", settings.reset_per_minute),
        PerIp::VerifyResend => ("verify_resend", settings.reset_per_minute),
    };
    let limit = Limit { name, max, window: Duration::from_secs(60) };
    hit(redis, limit, meta.ip.as_deref().unwrap_or("unknown")).await
}

/// Limits per account rather than per address: they hold however many
/// clients (or rotating IPs) ask, and across every instance.
#[derive(Debug, Clone, Copy)]
pub enum PerAccount {
    /// Password-reset mails to one address.
    ResetMail,
    /// Email-change requests by one signed-in account.
    EmailChange,
    /// "Someone tried to use your address" notices to one address.
    AddressNotice,
}

impl PerAccount {
    /// The limit this kind enforces.
    pub fn limit(self) -> Limit {
        let hour = Duration::from_secs(3600);
        match self {
            PerAccount::ResetMail => Limit { name: "reset_mail", max: 3, window: hour },
            PerAccount::EmailChange => Limit { name: "email_change", max: 5, window: hour },
            PerAccount::AddressNotice => Limit { name: "address_notice", max: 1, window: hour },
        }
    }
}

/// Counts one hit of `kind` for `account` (an address or a user id). The
/// key is a hash, so no address sits in Redis in clear.
pub async fn per_account(redis: &Redis, kind: PerAccount, account: &str) -> Result<(), AppError> {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(account.trim().to_lowercase().as_bytes()));
    hit(redis, kind.limit(), &digest[..32]).await
}

/// Whether `result` of a limit check means "over the limit" (true), "under
/// it" (false), or a failure to pass on.
pub fn over_limit(result: Result<(), AppError>) -> Result<bool, AppError> {
    match result {
        Ok(()) => Ok(false),
        Err(AppError::TooManyRequests { .. }) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Whether an account uses `address` and its owner may be told (now) that
/// someone tried it: at most one such notice an hour per address. Counts a
/// hit only when the address is in use.
pub async fn may_notify_owner(redis: &Redis, pool: &crate::db::PgPool, address: &str) -> Result<bool, AppError> {
    let lookup = address.to_owned();
    let in_use =
        crate::db::run(pool, move |conn| Ok(crate::models::user::User::find_by_email(conn, &lookup)?.is_some()))
            .await?;
    if !in_use {
        return Ok(false);
    }
    Ok(!over_limit(per_account(redis, PerAccount::AddressNotice, address).await)?)
}
