//! Linking a Steam account: the use case behind the Steam settings form.

use diesel::prelude::*;
use secrecy::{ExposeSecret, SecretString};

use crate::audit::{AuditEvent, RequestMeta};
use crate::db;
use crate::email::messages::SteamIdClaimed;
use crate::error::{AppError, Outcome};
use crate::infra::steam_client::{ApiKey, PlayerSummary, SteamError};
use crate::jobs::model as jobs;
use crate::jobs::STEAM_SYNC;
use crate::models::user::User;
use crate::settings::Settings;
use crate::state::AppState;
use crate::steam::conflicts;
use crate::steam::model::SteamAccount;
use crate::steam_ids::valid_api_key;

/// Why a running sync ended without finishing, as its job records it.
const SUPERSEDED: &str = "Stopped: the Steam link changed while it ran; a new sync follows.";
const UNLINKED: &str = "Stopped: the Steam account was unlinked while it ran.";

/// What proving a SteamID came to for the account that proved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Linked now (a first link, or in place of another SteamID).
    Linked { replaced: bool },
    /// The account already had this SteamID linked; it is proven now.
    Verified,
    /// Already linked and proven: nothing changed.
    Unchanged,
    /// Another account holds it, proven: refused (its owner is told).
    HeldByAnother,
}

/// Why a SteamID went from one account to another, for the job it stops.
const RELEASED: &str = "Stopped: the owner of this Steam account proved it on another Questline account.";

/// Gives `steam_id`, just proven through Steam by `user_id`, to that account,
/// in the caller's transaction. One account per SteamID: another account's
/// proven link wins (refused, and its owner mailed); an unproven one is
/// released to the prover (its owner mailed, its library removed). A link
/// to another SteamID is replaced, its library with it; the first sync of
/// the new one is queued.
pub fn claim(
    conn: &mut PgConnection,
    settings: &Settings,
    user_id: i64,
    steam_id: u64,
    persona: Option<&str>,
    avatar: Option<&str>,
    meta: &RequestMeta,
) -> Result<Claim, AppError> {
    let audit =
        |action: &'static str| AuditEvent::new("steam", action, meta).actor(user_id).target_text(steam_id.to_string());
    // A holder's running sync is stopped before its row is locked: a sync
    // locks its job, then its account (the order every writer keeps), so
    // taking them the other way round could deadlock with it.
    let unproven_holder = SteamAccount::holder_unlocked(conn, steam_id)?.filter(|(h, proven)| *h != user_id && !proven);
    if let Some((holder, _)) = unproven_holder {
        jobs::supersede(conn, STEAM_SYNC, holder, RELEASED)?;
    }
    match SteamAccount::holder(conn, steam_id)? {
        Some((holder, proven)) if holder == user_id => {
            if proven {
                return Ok(Claim::Unchanged);
            }
            SteamAccount::mark_verified(conn, user_id)?;
            audit("verify").record(conn)?;
            return Ok(Claim::Verified);
        }
        Some((holder, true)) => {
            if unproven_holder.is_some() {
                // Proven in between: its sync goes on after all.
                jobs::enqueue(conn, STEAM_SYNC, holder)?;
            }
            refused(conn, settings, steam_id, holder, Some(user_id))?;
            audit("link").failed("SteamID held by another account").record(conn)?;
            return Ok(Claim::HeldByAnother);
        }
        Some((holder, false)) => {
            jobs::supersede(conn, STEAM_SYNC, holder, RELEASED)?;
            SteamAccount::release(conn, holder)?;
            clear_library(conn, holder)?;
            conflicts::record(conn, steam_id, Some(holder), Some(user_id), "released")?;
            tell_holder(conn, settings, holder, steam_id, true)?;
            AuditEvent::new("steam", "release", meta)
                .actor(user_id)
                .target_user(holder, "")
                .details(serde_json::json!({ "steam_id": steam_id.to_string() }))
                .record(conn)?;
        }
        None => {}
    }
    let previous = SteamAccount::find(conn, user_id)?.and_then(|a| a.steam_id);
    let replaced = previous.is_some_and(|p| p != steam_id as i64);
    // All of the link in one savepoint: two accounts proving one SteamID at
    // once, the unique index lets one through, and the other finds it held
    // (as it would a moment later) with nothing of its own changed.
    let linked = conn.transaction(|conn| {
        // A sync running for the link before this one stops writing from
        // here on (its writes check its lease), and this link's first sync
        // is queued at once rather than after it.
        jobs::supersede(conn, STEAM_SYNC, user_id, SUPERSEDED)?;
        // Games not synced from this SteamID (another one's, or brought by
        // an import without a proven SteamID) are not this one's.
        if previous != Some(steam_id as i64) {
            clear_library(conn, user_id)?;
        }
        SteamAccount::link_proven(conn, user_id, steam_id, persona, avatar)?;
        jobs::enqueue(conn, STEAM_SYNC, user_id)
    });
    match linked {
        Ok(_) => {}
        Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {
            // Whoever won has committed: the index said so.
            if let Some((holder, _)) = SteamAccount::holder_unlocked(conn, steam_id)? {
                refused(conn, settings, steam_id, holder, Some(user_id))?;
            }
            audit("link").failed("SteamID held by another account").record(conn)?;
            return Ok(Claim::HeldByAnother);
        }
        Err(e) => return Err(e.into()),
    }
    audit("link").details(serde_json::json!({ "proven": true, "replaced": replaced })).record(conn)?;
    Ok(Claim::Linked { replaced })
}

/// Deletes a user's synced library (games, playtime, unlocks, what was set
/// aside) and works out their points and goals again: what a SteamID's
/// games leave behind when it goes. How many games there were.
fn clear_library(conn: &mut PgConnection, user_id: i64) -> diesel::QueryResult<usize> {
    let games = crate::models::library::delete_all_for(conn, user_id)?;
    crate::rarity::rescore_users(conn, &[user_id])?;
    crate::achievements::model::evaluate(conn, &[user_id])?;
    Ok(games)
}

/// A proof refused because `holder` proved `steam_id` first: listed for the
/// admin, and the holder told, once an hour for the same claimant.
/// `claimant` is `None` when the account that tried is gone with its
/// rolled-back sign-up.
pub fn refused(
    conn: &mut PgConnection,
    settings: &Settings,
    steam_id: u64,
    holder: i64,
    claimant: Option<i64>,
) -> Result<(), AppError> {
    if conflicts::refused_lately(conn, steam_id, claimant)? {
        return Ok(());
    }
    conflicts::record(conn, steam_id, Some(holder), claimant, "refused")?;
    tell_holder(conn, settings, holder, steam_id, false)
}

/// After a sign-up refused because another account proved its SteamID
/// first (and rolled back whole): the conflict listed, the holder told.
pub async fn sign_up_refused(state: &AppState, steam_id: u64) -> Result<(), AppError> {
    let settings = state.settings.clone();
    db::run(&state.pool, move |conn| {
        conn.transaction(|conn| match SteamAccount::holder_unlocked(conn, steam_id)? {
            Some((holder, _)) => refused(conn, &settings, steam_id, holder, None),
            None => Ok(()),
        })
    })
    .await?;
    state.jobs.notify();
    Ok(())
}

/// Mails the holder of a SteamID someone else proved.
fn tell_holder(
    conn: &mut PgConnection,
    settings: &Settings,
    holder: i64,
    steam_id: u64,
    released: bool,
) -> Result<(), AppError> {
    let user = User::find(conn, holder)?;
    if let Some((username, email)) = user.and_then(|u| u.verified_email().map(|e| (u.username.clone(), e.to_owned()))) {
        SteamIdClaimed {
            username,
            steam_id: steam_id.to_string(),
            released,
            steam_page: settings.public_url("/settings/steam"),
        }
        .queue(conn, &email)?;
    }
    Ok(())
}

/// Links the SteamID the signed-in user just proved through Steam (see
/// [`claim`]); the persona and avatar when Steam gave them.
pub async fn link_proven(
    state: &AppState,
    user_id: i64,
    steam_id: u64,
    profile: Option<PlayerSummary>,
    meta: &RequestMeta,
) -> Result<Claim, AppError> {
    let (settings, meta) = (state.settings.clone(), meta.clone());
    // On the background pool: superseding a running sync waits for its
    // write in flight, which may take longer than a page's statement limit.
    let claim = db::run(&state.background, move |conn| {
        conn.build_transaction().run(|conn| {
            let persona = profile.as_ref().map(|p| p.personaname.as_str());
            let avatar = profile.as_ref().and_then(|p| p.avatarfull.as_deref());
            claim(conn, &settings, user_id, steam_id, persona, avatar, &meta)
        })
    })
    .await?;
    state.jobs.notify();
    Ok(claim)
}

/// The share that sign-ups (SteamIDs proven before any account has them)
/// spend the instance key from: no user has id 0.
pub const SIGN_UPS: i64 = 0;

/// The player's persona and avatar, when a key is at hand to ask Steam
/// (the user's own, else the instance's); `None` when it cannot be had,
/// which costs nothing but a name to propose.
pub async fn profile_of(state: &AppState, user_id: Option<i64>, steam_id: u64) -> Option<PlayerSummary> {
    let (cipher, settings) = (state.cipher.clone(), state.settings.clone());
    let key = db::run(&state.pool, move |conn| {
        let own = match user_id {
            Some(id) => SteamAccount::find(conn, id)?
                .map(|a| a.api_key(&cipher))
                .transpose()
                .map_err(|e| AppError::Internal(e.into()))?
                .flatten(),
            None => None,
        };
        match own {
            Some(k) => Ok(Some(ApiKey::own(k))),
            // Before there is an account, the calls count toward one share
            // for every sign-up, so strangers cannot spend the key.
            None => crate::steam::instance_key::lent_to(conn, &cipher, &settings, user_id.unwrap_or(SIGN_UPS)),
        }
    })
    .await
    .ok()
    .flatten()?;
    match state.steam.player_summary(&key, steam_id).await {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::info!(error = %e, "no Steam persona for a SteamID proven just now");
            None
        }
    }
}

/// Stores the user's own Web API key after one call proves Steam takes it;
/// `Err(message)` for the form when it does not.
pub async fn set_own_key(
    state: &AppState,
    user_id: i64,
    api_key: &SecretString,
    meta: &RequestMeta,
) -> Result<Outcome<(), String>, AppError> {
    save_checked_key(state, api_key, meta, move |conn, cipher, key, meta| {
        SteamAccount::set_api_key(conn, cipher, user_id, key)?;
        Ok(AuditEvent::new("steam", "own_key_set", meta).actor(user_id).record(conn)?)
    })
    .await
}

/// Checks a typed key with Steam, then stores it with `save` in one
/// transaction; `Err(message)` for the form when Steam refuses it.
async fn save_checked_key(
    state: &AppState,
    api_key: &SecretString,
    meta: &RequestMeta,
    save: impl FnOnce(&mut PgConnection, &crate::crypto::Cipher, &str, &RequestMeta) -> Result<(), AppError>
        + Send
        + 'static,
) -> Result<Outcome<(), String>, AppError> {
    let key = match check_key(state, api_key).await {
        Ok(k) => k,
        Err(e) => return Ok(Outcome::Refused(e)),
    };
    let (cipher, meta) = (state.cipher.clone(), meta.clone());
    db::run(&state.pool, move |conn| conn.transaction(|conn| save(conn, &cipher, &key, &meta))).await?;
    Ok(Outcome::Done(()))
}

/// Forgets the user's own key; syncs use the instance's from then on.
pub async fn clear_own_key(state: &AppState, user_id: i64, meta: &RequestMeta) -> Result<(), AppError> {
    let meta = meta.clone();
    db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            SteamAccount::clear_api_key(conn, user_id)?;
            AuditEvent::new("steam", "own_key_removed", &meta).actor(user_id).record(conn)?;
            Ok(())
        })
    })
    .await
}

/// Unlinks the Steam account and deletes the library it synced (games,
/// playtime, unlocks); goals stay, their progress recomputed. Returns how
/// many games were removed; `None` (nothing done) for an account without a
/// password, which could no longer sign in.
pub async fn unlink(state: &AppState, user_id: i64, meta: &RequestMeta) -> Result<Option<usize>, AppError> {
    let meta = meta.clone();
    // The background pool, for the same reason as linking.
    db::run(&state.background, move |conn| {
        conn.build_transaction().run(|conn| {
            // An account made through Steam signs in only through Steam
            // until it has a password: unlinking would lock its owner out.
            if !User::find(conn, user_id)?.is_some_and(|u| u.has_password()) {
                return Ok(None);
            }
            // A sync still running writes nothing more of this account.
            jobs::supersede(conn, STEAM_SYNC, user_id, UNLINKED)?;
            SteamAccount::unlink(conn, user_id)?;
            let games = clear_library(conn, user_id)?;
            AuditEvent::new("steam", "unlink", &meta)
                .actor(user_id)
                .details(serde_json::json!({ "games_removed": games }))
                .record(conn)?;
            Ok(Some(games))
        })
    })
    .await
}

/// What the admin's Steam page shows.
pub struct AdminOverview {
    pub key: Option<crate::steam::instance_key::KeyInfo>,
    pub usage: crate::infra::steam_client::SharedUsage,
    /// The heaviest users of the instance key today: (username, calls).
    pub top: Vec<(String, u64)>,
    pub conflicts: Vec<conflicts::Conflict>,
    pub conflicts_total: i64,
    /// Accounts with a SteamID linked, and how many proved it.
    pub linked: i64,
    pub proven: i64,
}

/// Queues a sync of `user_id`'s library; `everything` first marks every
/// game to be fetched again, not only those whose playtime moved. `None`
/// when no Steam account is linked; `Some(false)` when a sync is already
/// queued or running (it takes the marks with it).
pub async fn queue_sync(pool: &db::PgPool, user_id: i64, everything: bool) -> Result<Option<bool>, AppError> {
    db::run(pool, move |conn| {
        conn.transaction(|conn| {
            if !SteamAccount::find(conn, user_id)?.is_some_and(|a| a.is_linked()) {
                return Ok(None);
            }
            if everything {
                crate::models::library::request_full_resync(conn, user_id)?;
                SteamAccount::request_resync(conn, user_id)?;
            }
            Ok(Some(jobs::enqueue(conn, STEAM_SYNC, user_id)?))
        })
    })
    .await
}

/// The instance key, its use today and the SteamID conflicts (a page of
/// 50, newest first).
pub async fn admin_overview(state: &AppState, page: i64) -> Result<AdminOverview, AppError> {
    let settings = state.settings.clone();
    let key_info = db::run(&state.pool, move |conn| Ok(crate::steam::instance_key::info(conn, &settings)?)).await?;
    let (cipher, settings) = (state.cipher.clone(), state.settings.clone());
    let key = db::run(&state.pool, move |conn| crate::steam::instance_key::current(conn, &cipher, &settings)).await?;
    let usage = match (&key, state.steam.budget()) {
        (Some(k), Some(b)) => b.shared_usage(k).await,
        _ => Default::default(),
    };
    let ids: Vec<i64> = usage.top.iter().map(|(id, _)| *id).collect();
    let offset = (page.max(1) - 1) * 50;
    let (names, conflicts, counts) = db::run(&state.pool, move |conn| {
        let names = User::usernames(conn, &ids)?;
        let conflicts = conflicts::page(conn, 50, offset)?;
        let counts = SteamAccount::counts(conn)?;
        Ok((names, conflicts, counts))
    })
    .await?;
    let top = usage
        .top
        .iter()
        .map(|(id, calls)| {
            let name = match names.get(id) {
                Some(n) => n.clone(),
                None if *id == SIGN_UPS => "(sign-ups, before an account exists)".to_owned(),
                None => format!("#{id}"),
            };
            (name, *calls)
        })
        .collect();
    Ok(AdminOverview {
        key: key_info,
        usage,
        top,
        conflicts: conflicts.0,
        conflicts_total: conflicts.1,
        linked: counts.0,
        proven: counts.1,
    })
}

/// Sets the instance key after one call proves Steam takes it;
/// `Err(message)` for the form when it does not.
pub async fn set_instance_key(
    state: &AppState,
    admin_id: i64,
    api_key: &SecretString,
    meta: &RequestMeta,
) -> Result<Outcome<(), String>, AppError> {
    save_checked_key(state, api_key, meta, move |conn, cipher, key, meta| {
        crate::steam::instance_key::set(conn, cipher, key, Some(admin_id))?;
        Ok(AuditEvent::new("admin", "instance_steam_key_set", meta).actor(admin_id).record(conn)?)
    })
    .await
}

/// Removes the key an admin set (`STEAM_API_KEY` applies again, if set).
pub async fn clear_instance_key(state: &AppState, admin_id: i64, meta: &RequestMeta) -> Result<bool, AppError> {
    let meta = meta.clone();
    db::run(&state.pool, move |conn| {
        conn.transaction(|conn| {
            let removed = crate::steam::instance_key::clear(conn)?;
            AuditEvent::new("admin", "instance_steam_key_removed", &meta).actor(admin_id).record(conn)?;
            Ok(removed)
        })
    })
    .await
}

/// A typed key, normalised, once one call shows Steam takes it.
async fn check_key(state: &AppState, api_key: &SecretString) -> Result<String, String> {
    let key = valid_api_key(api_key.expose_secret())?;
    // Any public profile answers a good key; Steam's own founder's is one
    // that always exists.
    let probe = ApiKey::own(SecretString::from(key.clone()));
    match state.steam.player_summary(&probe, 76_561_197_960_287_930).await {
        Ok(_) | Err(SteamError::NotFound) => Ok(key),
        Err(e) => Err(e.to_string()),
    }
}
