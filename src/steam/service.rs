//! Linking a Steam account: the use case behind the Steam settings form.

use secrecy::SecretString;

use super::account::SteamAccount;
use super::client::{parse_profile, valid_api_key, ProfileRef};
use crate::audit::{AuditEvent, RequestMeta};
use crate::db;
use crate::error::AppError;
use crate::jobs::model as jobs;
use crate::jobs::STEAM_SYNC;
use crate::state::AppState;

/// Why a running sync ended without finishing, as its job records it.
const SUPERSEDED: &str = "Stopped: the Steam link changed while it ran; a new sync follows.";
const UNLINKED: &str = "Stopped: the Steam account was unlinked while it ran.";

/// Links the profile (a SteamID64, a profile URL or a vanity name) with
/// the Web API key, after one call to Steam proves both, and queues the
/// first sync. An empty key keeps the key on file (a half-linked legacy
/// account has one and needs only its profile). The persona name when
/// linked; `Err(message)` for the form when Steam or the input refuses.
pub async fn link(
    state: &AppState,
    user_id: i64,
    profile: &str,
    api_key: &SecretString,
    meta: &RequestMeta,
) -> Result<Result<String, String>, AppError> {
    let (pool, steam, cipher) = (&state.pool, &state.steam, &state.cipher);
    // An empty key field keeps the key on file (a half-linked legacy
    // account has one and needs only its profile).
    let typed = secrecy::ExposeSecret::expose_secret(api_key).trim().to_owned();
    let stored_key = if typed.is_empty() {
        let c = cipher.clone();
        db::run(pool, move |conn| {
            let account = SteamAccount::find(conn, user_id)?;
            Ok(account.map(|a| a.api_key(&c)).transpose().map_err(|e| AppError::Internal(e.into()))?.flatten())
        })
        .await?
    } else {
        None
    };
    let checked = async {
        let profile = parse_profile(profile)?;
        let key = match &stored_key {
            Some(k) => secrecy::ExposeSecret::expose_secret(k).to_owned(),
            None => valid_api_key(&typed)?,
        };
        let secret = SecretString::from(key.clone());
        // One call proves the key works (a bad key is Steam's HTML 403).
        let steam_id = match profile {
            ProfileRef::Id(id) => id,
            ProfileRef::Vanity(name) => steam.resolve_vanity(&secret, &name).await.map_err(|e| e.to_string())?,
        };
        let summary = steam.player_summary(&secret, steam_id).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((steam_id, key, summary))
    }
    .await;
    let (steam_id, key, summary) = match checked {
        Ok(v) => v,
        Err(error) => return Ok(Err(error)),
    };
    let (cipher, meta) = (cipher.clone(), meta.clone());
    let persona = summary.personaname.clone();
    // On the background pool: superseding a running sync waits for its
    // write in flight, which may take longer than a page's statement limit.
    db::run(&state.background, move |conn| {
        conn.build_transaction().run(|conn| {
            // A sync running for the link before this one stops writing
            // from here on (its writes check its lease), and this link's
            // first sync is queued at once rather than after it.
            jobs::supersede(conn, STEAM_SYNC, user_id, SUPERSEDED)?;
            // Another Steam account's games are not this one's.
            let previous = SteamAccount::find(conn, user_id)?.and_then(|a| a.steam_id);
            if previous.is_some_and(|p| p != steam_id as i64) {
                crate::models::library::delete_all_for(conn, user_id)?;
                crate::rarity::rescore_users(conn, &[user_id])?;
                crate::achievements::model::evaluate(conn, &[user_id])?;
            }
            SteamAccount::link(
                conn,
                &cipher,
                user_id,
                steam_id,
                &key,
                &summary.personaname,
                summary.avatarfull.as_deref(),
            )?;
            jobs::enqueue(conn, STEAM_SYNC, user_id)?;
            AuditEvent::new("steam", "link", &meta).actor(user_id).target_text(steam_id.to_string()).record(conn)?;
            Ok(())
        })
    })
    .await?;
    state.jobs.notify();
    Ok(Ok(persona))
}

/// Unlinks the Steam account and deletes the library it synced (games,
/// playtime, unlocks); goals stay, their progress recomputed. Returns how
/// many games were removed.
pub async fn unlink(state: &AppState, user_id: i64, meta: &RequestMeta) -> Result<usize, AppError> {
    let meta = meta.clone();
    // The background pool, for the same reason as linking.
    db::run(&state.background, move |conn| {
        conn.build_transaction().run(|conn| {
            // A sync still running writes nothing more of this account.
            jobs::supersede(conn, STEAM_SYNC, user_id, UNLINKED)?;
            let games = crate::models::library::delete_all_for(conn, user_id)?;
            SteamAccount::unlink(conn, user_id)?;
            crate::rarity::rescore_users(conn, &[user_id])?;
            crate::achievements::model::evaluate(conn, &[user_id])?;
            AuditEvent::new("steam", "unlink", &meta)
                .actor(user_id)
                .details(serde_json::json!({ "games_removed": games }))
                .record(conn)?;
            Ok(games)
        })
    })
    .await
}
