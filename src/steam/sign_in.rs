//! Sign in through Steam, as use cases: starting it (bound to the browser's
//! session), believing Steam's answer (every check of
//! [`crate::infra::openid`], the provider's own word, a nonce spent once),
//! and what a proven SteamID then does: sign in, sign up, or re-confirm.

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use url::Url;

use super::link::{self as steam_service, Claim};
use crate::audit::{AuditEvent, RequestMeta};
use crate::auth::session::UserSession;
use crate::auth::sign_in::complete;
use crate::cache::Redis;
use crate::db;
use crate::email::messages::AddressInUse;
use crate::error::{AppError, Outcome};
use crate::infra::openid::{self, Refusal};
use crate::models::user::{NewUser, Role, Status, User};
use crate::ratelimit::{self, Limit, PerIp};
use crate::state::AppState;
use crate::steam::model::SteamAccount;
use crate::typed_session::{AppSession, PendingSteam, SteamIntent, SteamSignUp};

/// How long a sign-in through Steam may take, from our button to Steam's
/// answer coming back.
const PENDING_SECS: i64 = 600;
/// How long a proven SteamID waits for the rest of its sign-up.
pub const SIGN_UP_SECS: i64 = 1800;
/// Steam sign-ins a signed-in user may start (links, re-confirmations).
const LINKS_PER_MINUTE: u32 = 30;

/// Starts a sign-in through Steam: a fresh state bound to this session, and
/// the provider's address to send the browser to.
pub async fn begin(
    state: &AppState,
    session: &AppSession,
    intent: SteamIntent,
    user_id: Option<i64>,
    next: &str,
    remember: bool,
    meta: &RequestMeta,
) -> Result<Url, AppError> {
    match user_id {
        None => ratelimit::per_ip(&state.redis, &state.settings, PerIp::Login, meta).await?,
        Some(id) => {
            let limit = Limit { name: "steam_link", max: LINKS_PER_MINUTE, window: Duration::from_secs(60) };
            ratelimit::hit(&state.redis, limit, &id.to_string()).await?
        }
    }
    let mut bytes = [0u8; 24];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let nonce = hex::encode(bytes);
    let realm = realm(&state.settings.public_base_url);
    let return_to = Url::parse(&state.settings.public_url(&format!("/auth/steam/return?state={nonce}")))
        .map_err(|e| AppError::Internal(e.into()))?;
    session.begin_steam(&PendingSteam {
        state: nonce,
        return_to: return_to.to_string(),
        intent,
        user_id,
        next: next.to_owned(),
        remember,
        started: Utc::now().timestamp(),
    })?;
    Ok(openid::authorize_url(&state.settings.steam_openid_url, &return_to, &realm))
}

/// The realm Steam shows the user ("sign in to …"): the site's root.
fn realm(base: &Url) -> Url {
    let mut realm = base.clone();
    realm.set_path("/");
    realm.set_query(None);
    realm.set_fragment(None);
    realm
}

/// Believes Steam's answer or says why not: it must answer the sign-in
/// this browser started (same state, in time), pass every field check, be
/// vouched for by the provider, and carry a nonce never seen before. Every
/// refusal is audited. The SteamID proven, with what the sign-in was for.
pub async fn verify(
    state: &AppState,
    pending: Option<PendingSteam>,
    query: &str,
    meta: &RequestMeta,
) -> Result<Outcome<(PendingSteam, u64), Refusal>, AppError> {
    let result = check(state, pending.as_ref(), query).await;
    let (steam_id, reason) = match &result {
        Ok(id) => (Some(*id), None),
        Err(r) => (None, Some(format!("{r:?}"))),
    };
    let (meta, user_id) = (meta.clone(), pending.as_ref().and_then(|p| p.user_id));
    db::run(&state.pool, move |conn| {
        let mut event = AuditEvent::new("auth", "steam_openid", &meta);
        if let Some(id) = user_id {
            event = event.actor(id).target_user(id, "");
        }
        if let Some(id) = steam_id {
            event = event.details(serde_json::json!({ "steam_id": id.to_string() }));
        }
        match reason {
            Some(r) => event.failed(&r).record(conn)?,
            None => event.record(conn)?,
        }
        Ok(())
    })
    .await?;
    Ok(result.map(|id| (pending.expect("checked: a pending sign-in answered"), id)).into())
}

async fn check(state: &AppState, pending: Option<&PendingSteam>, query: &str) -> Result<u64, Refusal> {
    let pending = pending.ok_or(Refusal::NotThisBrowser)?;
    // The state in the address must be the one this session started with:
    // an answer Steam gave another browser (a login-CSRF link) is not ours.
    let given = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "state").map(|(_, v)| v.into_owned());
    let fresh = Utc::now().timestamp() - pending.started < PENDING_SECS;
    if !fresh || !given.is_some_and(|g| crate::crypto::secrets_equal(&g, &pending.state)) {
        return Err(Refusal::NotThisBrowser);
    }
    let fields = openid::openid_fields(query).ok_or(Refusal::NotPositive)?;
    let assertion = openid::check_fields(fields, &state.settings.steam_openid_url, &pending.return_to, Utc::now())?;
    state.openid.confirm(&assertion).await?;
    spend_nonce(&state.redis, &state.settings.steam_openid_url, &assertion.nonce).await?;
    Ok(assertion.steam_id)
}

/// Records a nonce as used, on every instance (Redis), for longer than a
/// nonce stays fresh; `Replayed` when it was used before. Without Redis
/// nothing can be known, so nothing is believed.
async fn spend_nonce(redis: &Redis, endpoint: &Url, nonce: &str) -> Result<(), Refusal> {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(format!("{endpoint}\n{nonce}").as_bytes()));
    let key = redis.key(&format!("openid_nonce:{digest}"));
    let ttl = (openid::NONCE_MAX_AGE_SECS * 3) as u64;
    let set: Result<Option<String>, _> = redis
        .call(|mut c| {
            let key = key.clone();
            async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl)
                    .query_async::<Option<String>>(&mut c)
                    .await
            }
        })
        .await;
    match set {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(Refusal::Replayed),
        Err(_) => Err(Refusal::Unreachable),
    }
}

/// What signing in with a proven SteamID came to.
pub enum SteamSignIn {
    Success {
        user_id: i64,
        session: UserSession,
    },
    /// The account has two-factor authentication: a code comes next.
    SecondFactor {
        user_id: i64,
    },
    /// No account has proven this SteamID; `held_unproven` when one has it
    /// linked unproven (its owner may prefer to sign in with a password).
    NoAccount {
        held_unproven: bool,
    },
    /// The account may not sign in now (locked or disabled).
    Refused,
}

/// Signs in the account that proved `steam_id`, as a password sign-in
/// would finish (sessions, new-device notice, audit), or says there is none.
pub async fn sign_in(
    state: &AppState,
    steam_id: u64,
    remember: bool,
    meta: &RequestMeta,
) -> Result<SteamSignIn, AppError> {
    let meta = meta.clone();
    let outcome = db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let holder = SteamAccount::holder(conn, steam_id)?;
            let Some((user_id, true)) = holder else {
                return Ok(SteamSignIn::NoAccount { held_unproven: holder.is_some() });
            };
            let user = User::lock_for_update(conn, user_id)?;
            let audit = || AuditEvent::new("auth", "login", &meta).actor(user.id).target_user(user.id, &user.username);
            if user.locked_until.is_some_and(|t| t > Utc::now()) || user.status != Status::Active {
                audit().failed("account locked or disabled").record(conn)?;
                return Ok(SteamSignIn::Refused);
            }
            if user.has_totp() {
                return Ok(SteamSignIn::SecondFactor { user_id });
            }
            let session = complete(conn, &user, remember, &meta, "steam")?;
            Ok(SteamSignIn::Success { user_id, session })
        })
    })
    .await?;
    state.jobs.notify();
    state.metrics.login(match &outcome {
        SteamSignIn::Success { .. } => "success",
        SteamSignIn::SecondFactor { .. } => "second_factor",
        SteamSignIn::NoAccount { .. } | SteamSignIn::Refused => "failure",
    });
    Ok(outcome)
}

/// A username to propose from a persona name: its letters, digits, `_` and
/// `-` (others dropped), 3 to 32 of them, else `player` and the SteamID's
/// last digits; made unique with a number when taken.
pub async fn propose_username(state: &AppState, persona: Option<&str>, steam_id: u64) -> Result<String, AppError> {
    let base: String = persona
        .unwrap_or_default()
        .chars()
        .map(|c| if c == ' ' || c == '.' { '_' } else { c })
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(28)
        .collect::<String>()
        .trim_matches(|c| c == '_' || c == '-')
        .to_owned();
    let base = if base.chars().count() >= 3 { base } else { format!("player{}", steam_id % 100_000) };
    db::run(&state.pool, move |conn| {
        if !User::username_taken(conn, &base)? {
            return Ok(base);
        }
        for n in 2..50 {
            let candidate = format!("{base}{n}");
            if !User::username_taken(conn, &candidate)? {
                return Ok(candidate);
            }
        }
        Ok(format!("{base}{}", steam_id % 10_000))
    })
    .await
}

/// A sign-up's transaction ends early: for the form, or on an error.
enum Abort {
    Form(SignUpError),
    App(AppError),
}

impl From<AppError> for Abort {
    fn from(e: AppError) -> Self {
        Abort::App(e)
    }
}

impl From<diesel::result::Error> for Abort {
    fn from(e: diesel::result::Error) -> Self {
        Abort::App(e.into())
    }
}

/// Why a sign-up through Steam did not go through, for its form.
pub enum SignUpError {
    UsernameTaken,
    /// Another account proved the SteamID meanwhile.
    SteamIdTaken,
}

/// Creates an account for a SteamID a visitor proved: no password (they
/// sign in through Steam, and may set one later), the address waiting for
/// its confirmation link (an address another account uses gets nothing but
/// a notice to its owner, as at registration), the SteamID linked as proven
/// (see [`steam_service::claim`]) and its first sync queued; signed in.
pub async fn sign_up(
    state: &AppState,
    pending: &SteamSignUp,
    username: &str,
    email: &str,
    meta: &RequestMeta,
) -> Result<Outcome<UserSession, SignUpError>, AppError> {
    ratelimit::per_ip(&state.redis, &state.settings, PerIp::Register, meta).await?;
    let notice_owner = ratelimit::may_notify_owner(&state.redis, &state.pool, email).await?;
    let (name, addr, settings, meta, p) =
        (username.to_owned(), email.to_owned(), state.settings.clone(), meta.clone(), pending.clone());
    let created = db::run(&state.background, move |conn| {
        let made = conn.build_transaction().run::<_, Abort, _>(|conn| {
            if User::username_taken(conn, &name)? {
                return Err(Abort::Form(SignUpError::UsernameTaken));
            }
            let user =
                User::insert(conn, &NewUser { username: &name, email: None, password_hash: None, role: Role::User })?;
            match User::find_by_email(conn, &addr)? {
                Some(owner) => {
                    AuditEvent::new("auth", "register", &meta)
                        .actor(user.id)
                        .target_user(user.id, &user.username)
                        .failed("email already registered; account made without it")
                        .record(conn)?;
                    if notice_owner {
                        AddressInUse { username: owner.username.clone(), attempt: "a new account".into() }
                            .queue(conn, &addr)?;
                    }
                }
                None => {
                    User::set_pending_email(conn, user.id, &addr)?;
                    crate::auth::mail_links::queue_verification(conn, &settings, &user, &addr)?;
                }
            }
            let (persona, avatar) = (p.persona.as_deref(), p.avatar.as_deref());
            if steam_service::claim(conn, &settings, user.id, p.steam_id, persona, avatar, &meta)?
                == Claim::HeldByAnother
            {
                // Nothing of this sign-up stays.
                return Err(Abort::Form(SignUpError::SteamIdTaken));
            }
            AuditEvent::new("auth", "register", &meta)
                .actor(user.id)
                .target_user(user.id, &user.username)
                .details(serde_json::json!({ "method": "steam" }))
                .record(conn)?;
            Ok(complete(conn, &user, p.remember, &meta, "steam")?)
        });
        match made {
            Ok(session) => Ok(Outcome::Done(session)),
            Err(Abort::Form(e)) => Ok(Outcome::Refused(e)),
            Err(Abort::App(e)) => Err(e),
        }
    })
    .await?;
    if matches!(created, Outcome::Refused(SignUpError::SteamIdTaken)) {
        // Nothing of the sign-up stayed; the holder still hears of it.
        steam_service::sign_up_refused(state, pending.steam_id).await?;
    }
    state.jobs.notify();
    Ok(created)
}

/// Whether signing in through Steam as `steam_id` re-confirms the user:
/// only as the SteamID their account has linked, and only for an account
/// without 2FA (whose sensitive changes ask for the password and a code,
/// which Steam does not give).
pub async fn reconfirms(state: &AppState, user_id: i64, steam_id: u64) -> Result<bool, AppError> {
    db::run(&state.pool, move |conn| {
        let own = SteamAccount::find(conn, user_id)?.and_then(|a| a.steam_id) == Some(steam_id as i64);
        let second_factor = User::find(conn, user_id)?.is_none_or(|u| u.has_totp());
        Ok(own && !second_factor)
    })
    .await
}

/// A proven SteamID waiting for its sign-up, while it is still good.
pub fn pending_sign_up(session: &AppSession) -> Option<SteamSignUp> {
    session.steam_sign_up().filter(|p| Utc::now().timestamp() - p.started < SIGN_UP_SECS)
}
