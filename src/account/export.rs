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
use serde_json::json;
use zip::write::SimpleFileOptions;

use crate::error::AppError;
use crate::images::model::OwnedFile;
use crate::infra::storage::Storage;
use crate::models::history;
use crate::models::score;
use crate::models::user::User;
use crate::steam::model::SteamAccount;

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

/// Rows read and written at a time: the export holds one batch in memory,
/// never a whole library.
const BATCH: i64 = 2000;

type Zip = zip::ZipWriter<std::io::Cursor<Vec<u8>>>;

/// Writes `rows` of a batched read into the zip's current file: `next`
/// reads the batch after the last row it is given. Returns how many.
fn write_batches<T>(
    zip: &mut Zip,
    mut next: impl FnMut(Option<&T>) -> diesel::QueryResult<Vec<T>>,
    mut write: impl FnMut(&mut Zip, &T, bool) -> Result<(), AppError>,
) -> Result<usize, AppError> {
    let mut written = 0;
    let mut batch = next(None)?;
    while !batch.is_empty() {
        for row in &batch {
            write(zip, row, written == 0)?;
            written += 1;
        }
        if (batch.len() as i64) < BATCH {
            break;
        }
        batch = next(batch.last())?;
    }
    Ok(written)
}

fn put(zip: &mut Zip, bytes: &[u8]) -> Result<(), AppError> {
    zip.write_all(bytes).map_err(internal)
}

/// One element of a JSON list, after a comma unless it is the `first`.
fn element<T: serde::Serialize>(zip: &mut Zip, value: &T, first: bool) -> Result<(), AppError> {
    if !first {
        put(zip, b",\n")?;
    }
    serde_json::to_writer(zip, value).map_err(internal)
}

/// One CSV line of `fields`, each escaped for spreadsheets.
fn csv_line(fields: &[&str]) -> Result<Vec<u8>, AppError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(fields.iter().map(|f| crate::response::csv_cell(f).into_owned())).map_err(internal)?;
    w.into_inner().map_err(internal)
}

fn text<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map(|v| v.to_string()).unwrap_or_default()
}

/// The archive with everything but the image files, and the files still
/// to add: [`build_rows`] reads PostgreSQL, [`add_images`] the storage,
/// so no database connection waits on a disk.
pub struct Partial {
    zip: Zip,
    files: Vec<OwnedFile>,
    filename: String,
}

/// Gathers the user's data and packs it, a batch of rows at a time.
pub fn build_rows(conn: &mut PgConnection, user: &User) -> Result<Partial, AppError> {
    let steam = SteamAccount::find(conn, user.id)?;
    let totals = score::of(conn, user.id)?;
    let files = crate::images::model::owned_files(conn, user.id)?;
    let file_name = |public_id: &str| files.iter().find(|f| f.public_id == public_id).map(archive_path);

    let head = json!({
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
        "images": files.iter().map(|f| json!({
            "file": archive_path(f),
            "content_type": f.content_type,
        })).collect::<Vec<_>>(),
    });

    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);

    zip.start_file("questline.json", options).map_err(internal)?;
    // The small fields first, then each long list streamed into its key.
    let head = serde_json::to_string(&head).map_err(internal)?;
    put(&mut zip, head.trim_end_matches('}').as_bytes())?;
    let id = user.id;
    put(&mut zip, b",\n\"library\": [\n")?;
    write_batches(&mut zip, |after| history::export_library(conn, id, after, BATCH), element)?;
    put(&mut zip, b"],\n\"unlocks\": [\n")?;
    write_batches(&mut zip, |after| history::export_unlocks(conn, id, after, BATCH), element)?;
    put(&mut zip, b"],\n\"goals\": [\n")?;
    write_batches(
        &mut zip,
        |after: Option<&crate::achievements::model::AchievementRow>| {
            crate::achievements::model::batch_for(conn, id, after.map_or(0, |g| g.id), BATCH)
        },
        |z, g, first| {
            let goal = json!({
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
            });
            element(z, &goal, first)
        },
    )?;
    put(&mut zip, b"]}\n")?;

    zip.start_file("library.csv", options).map_err(internal)?;
    put(&mut zip, b"appid,name,playtime_minutes,unlocked,achievements,points,last_played_at,last_unlock_at\n")?;
    write_batches(
        &mut zip,
        |after| history::export_library(conn, id, after, BATCH),
        |z, e, _| {
            let line = csv_line(&[
                &e.appid.to_string(),
                &e.name,
                &e.playtime_minutes.to_string(),
                &e.unlocked.to_string(),
                &e.achievements.to_string(),
                &e.points.to_string(),
                &text(&e.last_played_at.map(|t| t.to_rfc3339())),
                &text(&e.last_unlock_at.map(|t| t.to_rfc3339())),
            ])?;
            put(z, &line)
        },
    )?;
    zip.start_file("unlocks.csv", options).map_err(internal)?;
    put(&mut zip, b"appid,game,api_name,achievement,unlocked_at,global_percent,points\n")?;
    write_batches(
        &mut zip,
        |after| history::export_unlocks(conn, id, after, BATCH),
        |z, u, _| {
            let line = csv_line(&[
                &u.appid.to_string(),
                &u.game,
                &u.api_name,
                &u.achievement,
                &text(&u.unlocked_at.map(|t| t.to_rfc3339())),
                &text(&u.global_percent),
                &u.points.to_string(),
            ])?;
            put(z, &line)
        },
    )?;
    let filename = format!("questline-{}-{}.zip", user.username, Utc::now().format("%Y-%m-%d"));
    Ok(Partial { zip, files, filename })
}

/// Adds the user's image files to the archive and finishes it. Images are
/// compressed already: they are stored as they are, not deflated again.
pub fn add_images(partial: Partial, storage: &dyn Storage) -> Result<Archive, AppError> {
    let Partial { mut zip, files, filename } = partial;
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for f in &files {
        // A file missing from storage is left out rather than failing the
        // whole export; the JSON still lists it.
        match storage.get(&f.storage_key) {
            Ok(bytes) => {
                zip.start_file(archive_path(f), stored).map_err(internal)?;
                zip.write_all(&bytes).map_err(internal)?;
            }
            Err(e) => tracing::warn!(error = %e, image = %f.public_id, "an image is missing from storage"),
        }
    }
    let bytes = zip.finish().map_err(internal)?.into_inner();
    Ok(Archive { filename, bytes })
}
