//! users.json: names (with the collision rule), passwords, emails, roles and
//! Steam accounts.

use std::collections::HashSet;

use diesel::prelude::*;

use super::context::{Run, TxError};
use super::source::{parse_time, LegacyUser};
use crate::infra::legacy_hash;
use crate::models::user::{ImportedUser, User};
use crate::names;
use crate::schema::users;
use crate::steam::model::SteamAccount;
use crate::steam_ids::valid_api_key;

const KIND: &str = "users";
/// Questline's column allows 64 characters; a rename adds a suffix.
const MAX_NAME: usize = 58;

fn valid_steam_id(raw: &str) -> Option<u64> {
    (raw.len() == 17 && raw.starts_with("7656119") && raw.bytes().all(|b| b.is_ascii_digit()))
        .then(|| raw.parse().ok())
        .flatten()
}

/// One user as it will be written.
pub(crate) fn import(run: &mut Run<'_>, legacy: &[LegacyUser]) -> Result<(), TxError> {
    let existing: Vec<(Option<String>, i64)> =
        users::table.select((users::legacy_username, users::id)).load(run.conn)?;
    for (legacy_name, id) in &existing {
        if let Some(l) = legacy_name {
            run.user_ids.insert(l.clone(), *id);
        }
    }
    // Names compare by one rule everywhere (`crate::names::key`: NFKC and
    // full case folding), so `ΣΑΣ` and `σας`, or `Zoë` composed and
    // decomposed, are one name here exactly as at sign-in.
    let mut taken: HashSet<String> = User::all_keys(run.conn)?.into_iter().collect();
    let mut emails: HashSet<String> = users::table
        .filter(users::email.is_not_null())
        .select(users::email.assume_not_null())
        .load(run.conn)?
        .into_iter()
        .collect();

    // A rename's suffix must be free of every name, existing or incoming:
    // `A`, `a` and `a-2` become `A`, `a-3` and `a-2`, never `a-2-2`.
    let incoming: HashSet<String> = legacy.iter().map(|u| names::key(&u.name)).collect();
    let mut rows = Vec::new();
    for u in legacy {
        let src = format!("users.json: {}", u.name);
        run.report.counts(KIND).read += 1;
        if run.user_ids.contains_key(&u.name) {
            run.report.counts(KIND).already_present += 1;
            continue;
        }
        let display = names::display_form(&u.name);
        if display.trim().is_empty() || display.chars().count() > MAX_NAME || display.chars().any(char::is_control) {
            run.report.skip(KIND, format!("username must be 1 to {MAX_NAME} printable characters"), src);
            continue;
        }
        if display != u.name {
            run.report.change(
                KIND,
                format!("name stored in Unicode NFC as `{display}` (same letters, composed)"),
                &src,
            );
        }
        let mut username = display.clone();
        if taken.contains(&names::key(&username)) {
            let mut k = 2;
            loop {
                let candidate = names::key(&format!("{display}-{k}"));
                if !taken.contains(&candidate) && !incoming.contains(&candidate) {
                    break;
                }
                k += 1;
            }
            username = format!("{display}-{k}");
            run.report.change(
                KIND,
                format!("renamed to `{username}`: the name is taken without regard to case or Unicode form"),
                &src,
            );
        }
        taken.insert(names::key(&username));
        let password_hash = match &u.password_hash {
            Some(h) if legacy_hash::parse(h).is_some() => Some(h.clone()),
            _ => {
                run.report.change(KIND, "password hash in an unknown format: no usable password until a reset", &src);
                None
            }
        };
        let email = match &u.email {
            None => None,
            Some(raw) => match crate::auth::email_address::normalise_email(raw) {
                Err(_) => {
                    run.report.change(KIND, format!("email `{raw}` dropped: not a valid address"), &src);
                    None
                }
                Ok(e) if emails.contains(&e) => {
                    run.report.change(KIND, format!("email `{raw}` dropped: another account already has it"), &src);
                    None
                }
                Ok(e) => {
                    if names::display_form(raw.trim()) != raw.trim() {
                        run.report.change(KIND, format!("email stored in Unicode NFC as `{e}`"), &src);
                    }
                    emails.insert(e.clone());
                    Some(e)
                }
            },
        };
        let created_at = match u.created_at.as_deref().map(|t| (t, parse_time(t))) {
            None => chrono::Utc::now(),
            Some((_, Some(t))) => t,
            Some((raw, None)) => {
                run.report.change(KIND, format!("created_at `{raw}` unreadable: set to the import time"), &src);
                chrono::Utc::now()
            }
        };
        rows.push(ImportedUser {
            id: run.fresh_id(),
            legacy: u.name.clone(),
            username,
            email,
            password_hash,
            role: if u.is_admin { "admin" } else { "user" },
            created_at,
        });
    }

    for chunk in rows.chunks(1000) {
        let ids = User::insert_imported(run.conn, chunk, run.run_id)?;
        for (id, legacy) in ids.into_iter() {
            let legacy = legacy.expect("inserted with a legacy name");
            run.user_ids.insert(legacy.clone(), id);
            run.new_users.insert(legacy);
        }
        run.report.counts(KIND).imported += chunk.len() as u64;
    }

    for u in legacy.iter().filter(|u| run.new_users.contains(&u.name)) {
        let src = format!("users.json: {}", u.name);
        let key = match u.steam_api_key.as_deref().map(valid_api_key) {
            Some(Ok(k)) => Some(k),
            Some(Err(_)) => {
                run.report.change(KIND, "steam_api_key dropped: not 32 hexadecimal characters", &src);
                None
            }
            None => None,
        };
        let steam_id = match u.steam_id.as_deref() {
            Some(raw) => match valid_steam_id(raw) {
                Some(id) => Some(id),
                None => {
                    run.report.change(KIND, format!("steam_id `{raw}` dropped: not a SteamID64"), &src);
                    None
                }
            },
            None => None,
        };
        let user_id = run.user_ids[&u.name];
        // One account per SteamID: one held already (by an account here
        // before, or earlier in this file) is not taken; the user proves
        // theirs by signing in through Steam, which settles who owns it.
        let mut conflicted = false;
        let steam_id = match steam_id {
            // Not locked: the import must not hold live accounts' rows for
            // its whole run (a claim racing it is caught below).
            Some(id) => match SteamAccount::holder_unlocked(run.conn, id)? {
                Some((holder, _)) => {
                    conflicted = true;
                    if !run.opts.dry_run {
                        crate::steam::conflicts::record(run.conn, id, Some(holder), Some(user_id), "refused")?;
                    }
                    run.report.change(
                        KIND,
                        format!("steam_id `{id}` dropped: another account has it linked; the user can prove theirs by signing in through Steam"),
                        &src,
                    );
                    None
                }
                None => Some(id),
            },
            None => None,
        };
        if key.is_some() || steam_id.is_some() {
            // Brought over unproven: it syncs, but stays off leaderboards,
            // compare and public profiles until its owner signs in through
            // Steam. A SteamID proven by someone since the check above is
            // theirs: kept without it, as if it had been held already.
            let cipher = run.cipher.clone();
            let kept =
                run.conn.transaction(|c| SteamAccount::keep_unproven(c, &cipher, user_id, steam_id, key.as_deref()));
            match kept {
                Ok(()) => {}
                Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
                    if steam_id.is_some() =>
                {
                    conflicted = true;
                    let id = steam_id.expect("checked by the guard");
                    let holder = SteamAccount::holder_unlocked(run.conn, id)?.map(|(h, _)| h);
                    if !run.opts.dry_run {
                        crate::steam::conflicts::record(run.conn, id, holder, Some(user_id), "refused")?;
                    }
                    run.report.change(
                        KIND,
                        format!("steam_id `{id}` dropped: another account has it linked; the user can prove theirs by signing in through Steam"),
                        &src,
                    );
                    if key.is_some() {
                        let c = run.cipher.clone();
                        SteamAccount::keep_unproven(run.conn, &c, user_id, None, key.as_deref())?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        if key.is_some() != steam_id.is_some() && !conflicted {
            let missing = if key.is_none() { "API key" } else { "steam_id" };
            run.report.change(
                KIND,
                format!("Steam link kept incomplete: no valid {missing}; the user completes it"),
                &src,
            );
        }
    }
    Ok(())
}
