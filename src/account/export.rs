//! "Download your data": one ZIP with everything Questline keeps of a user
//! that is theirs to take away: `questline.json` (account, Steam link,
//! totals, library, unlocks, goals), `library.csv` and `unlocks.csv` for
//! spreadsheets, and the images they uploaded under `images/`.
//!
//! Left out on purpose: secrets (the password hash, the Steam Web API key,
//! the 2FA secret), which are no use outside this instance.

use std::io::Write;

use chrono::Utc;
use diesel::PgConnection;
use serde_json::{json, Value};
use zip::write::SimpleFileOptions;

use crate::error::AppError;
use crate::images::model::OwnedFile;
use crate::images::storage::Storage;
use crate::models::history::{self, ExportedEntry, ExportedUnlock};
use crate::models::score;
use crate::models::user::User;
use crate::steam::account::SteamAccount;

/// The version of `questline.json`'s shape; raised when a field changes
/// meaning or goes away.
pub const FORMAT_VERSION: u32 = 1;

/// A finished archive.
pub struct Archive {
    pub filename: String,
    pub bytes: Vec<u8>,
}

fn extension(content_type: &str) -> &'static str {
    match content_type {
        "image/png" => "png",
        "image/jpeg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => "bin",
    }
}

/// Where an image goes in the archive.
fn archive_path(f: &OwnedFile) -> String {
    format!("images/{}.{}", f.public_id, extension(&f.content_type))
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(anyhow::anyhow!("building the data export: {e}"))
}

fn csv_of<T: serde::Serialize>(rows: &[T]) -> Result<Vec<u8>, AppError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(internal)?;
    }
    w.into_inner().map_err(internal)
}

/// Gathers the user's data and packs it.
pub fn build(conn: &mut PgConnection, storage: &dyn Storage, user: &User) -> Result<Archive, AppError> {
    let library: Vec<ExportedEntry> = history::export_library(conn, user.id)?;
    let unlocks: Vec<ExportedUnlock> = history::export_unlocks(conn, user.id)?;
    let steam = SteamAccount::find(conn, user.id)?;
    let totals = score::of(conn, user.id)?;
    let goals = crate::achievements::model::list_for(conn, user.id)?;
    let files = crate::images::model::owned_files(conn, user.id)?;

    let file_name = |public_id: &str| files.iter().find(|f| f.public_id == public_id).map(archive_path);
    let goals_json: Vec<Value> = goals
        .iter()
        .map(|g| {
            json!({
                "id": g.id,
                "name": g.name,
                "description": g.description,
                "condition_type": g.condition_type,
                "condition": g.condition,
                "needs_edit": g.needs_edit,
                "progress": { "current": g.progress_current, "target": g.progress_target },
                "met_at": g.met_at,
                "created_at": g.created_at,
                "shared": g.shared,
                "copied_from_community_id": g.imported_from,
                "image": g.image_public_id.as_deref().and_then(file_name),
            })
        })
        .collect();
    let document = json!({
        "format": "questline-export",
        "version": FORMAT_VERSION,
        "exported_at": Utc::now(),
        "account": {
            "username": user.username,
            "email": user.email,
            "email_verified_at": user.email_verified_at,
            "created_at": user.created_at,
            "last_login_at": user.last_login_at,
            "two_factor_enabled": user.totp_enabled_at.is_some(),
            "legacy_username": user.legacy_username,
        },
        "steam": steam.map(|s| json!({
            "steam_id": s.steam_id.map(|id| id.to_string()),
            "persona_name": s.persona_name,
            "linked_at": s.linked_at,
            "last_synced_at": s.last_synced_at,
            "api_key_last4": s.api_key_last4,
        })),
        "totals": {
            "points": totals.points,
            "unlocked": totals.unlocked,
            "perfect_games": totals.perfect,
            "games": totals.games,
        },
        "library": library,
        "unlocks": unlocks,
        "goals": goals_json,
        "images": files.iter().map(|f| json!({
            "file": archive_path(f),
            "content_type": f.content_type,
        })).collect::<Vec<_>>(),
    });

    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let add = |name: &str, bytes: &[u8], zip: &mut zip::ZipWriter<std::io::Cursor<Vec<u8>>>| {
        zip.start_file(name, options).map_err(internal)?;
        zip.write_all(bytes).map_err(internal)
    };
    add("questline.json", &serde_json::to_vec_pretty(&document).map_err(internal)?, &mut zip)?;
    add("library.csv", &csv_of(&library)?, &mut zip)?;
    add("unlocks.csv", &csv_of(&unlocks)?, &mut zip)?;
    for f in &files {
        // A file missing from storage is left out rather than failing the
        // whole export; the JSON still lists it.
        match storage.get(&f.storage_key) {
            Ok(bytes) => add(&archive_path(f), &bytes, &mut zip)?,
            Err(e) => tracing::warn!(error = %e, image = %f.public_id, "an image is missing from storage"),
        }
    }
    let bytes = zip.finish().map_err(internal)?.into_inner();
    Ok(Archive { filename: format!("questline-{}-{}.zip", user.username, Utc::now().format("%Y-%m-%d")), bytes })
}
