//! Image rows: `image_blobs` (one per stored content) and `images` (one per
//! use, with a random public name).

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use rand::RngCore;

use super::process::Processed;
use crate::error::AppError;
use crate::infra::storage::Storage;
use crate::schema::{image_blobs, images};

/// An image as pages link to it.
#[derive(Debug, Clone, Queryable, Selectable, PartialEq, Eq)]
#[diesel(table_name = images)]
pub struct Image {
    pub id: i64,
    pub public_id: String,
    pub owner_id: Option<i64>,
    pub sha256: String,
}

/// What templates need to show an image.
#[derive(Debug, Clone)]
pub struct ImageRef {
    pub public_id: String,
}

impl ImageRef {
    pub fn url(&self) -> String {
        format!("/media/{}", self.public_id)
    }
    pub fn thumb_url(&self) -> String {
        format!("/media/{}/thumb", self.public_id)
    }
}

/// An image with what serving it needs.
#[derive(Debug, QueryableByName)]
pub struct StoredImage {
    #[diesel(sql_type = Nullable<BigInt>)]
    pub owner_id: Option<i64>,
    #[diesel(sql_type = Text)]
    pub sha256: String,
    #[diesel(sql_type = Text)]
    pub content_type: String,
    #[diesel(sql_type = Text)]
    pub storage_key: String,
    #[diesel(sql_type = Text)]
    pub thumb_key: String,
    /// Shown on an active, visible community achievement: anyone may see it.
    #[diesel(sql_type = Bool)]
    pub public: bool,
}

impl StoredImage {
    pub fn find(conn: &mut PgConnection, public_id: &str) -> QueryResult<Option<StoredImage>> {
        diesel::sql_query(
            "SELECT i.owner_id, b.sha256, b.content_type, b.storage_key, b.thumb_key,
                    EXISTS (SELECT 1 FROM community_achievements c
                            WHERE c.image_id = i.id AND c.is_active AND c.hidden_at IS NULL) AS public
             FROM images i JOIN image_blobs b ON b.sha256 = i.sha256
             WHERE i.public_id = $1",
        )
        .bind::<Text, _>(public_id)
        .get_result(conn)
        .optional()
    }
}

/// One of a user's own images, as the data export copies it.
#[derive(Debug, QueryableByName)]
pub struct OwnedFile {
    #[diesel(sql_type = Text)]
    pub public_id: String,
    #[diesel(sql_type = Text)]
    pub content_type: String,
    #[diesel(sql_type = Text)]
    pub storage_key: String,
}

/// The images a user owns (uploaded, or copied with an imported goal).
pub fn owned_files(conn: &mut PgConnection, owner_id: i64) -> QueryResult<Vec<OwnedFile>> {
    diesel::sql_query(
        "SELECT i.public_id, b.content_type, b.storage_key
         FROM images i JOIN image_blobs b ON b.sha256 = i.sha256
         WHERE i.owner_id = $1 ORDER BY i.id",
    )
    .bind::<BigInt, _>(owner_id)
    .load(conn)
}

/// What one upload stored, for the audit log.
#[derive(Debug, Clone)]
pub struct UploadRecord {
    pub image: Image,
    /// False when identical content was already stored and reused.
    pub new_blob: bool,
}

/// Why an upload was not stored, besides the image itself being refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("This image would take you over your storage quota of {quota_mb} MB. Delete some images first.")]
    Quota { quota_mb: u64 },
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error("storing an image file: {0}")]
    Io(#[from] std::io::Error),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Quota { .. } => AppError::BadRequest(e.to_string()),
            StoreError::Db(e) => e.into(),
            StoreError::Io(e) => AppError::Internal(e.into()),
        }
    }
}

fn random_name() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Bytes (images and thumbnails) a user's images take, each content once.
pub fn usage(conn: &mut PgConnection, owner_id: i64) -> QueryResult<i64> {
    image_blobs::table
        .filter(image_blobs::sha256.eq_any(images::table.filter(images::owner_id.eq(owner_id)).select(images::sha256)))
        .select(diesel::dsl::sum(image_blobs::byte_size + image_blobs::thumb_size))
        .first::<Option<i64>>(conn)
        .map(|s| s.unwrap_or(0))
}

/// Stores a processed image for `owner_id` (or for the community when
/// `None`) within `quota_bytes` (none for imports), reusing the stored file when the same content is already there.
/// Must run inside a transaction: the blob row is locked against the
/// orphan sweep until it commits, and the owner's row serialises quota
/// checks. Files written here and not referenced are removed on failure.
pub fn store(
    conn: &mut PgConnection,
    storage: &dyn Storage,
    owner_id: Option<i64>,
    p: &Processed,
    quota_bytes: Option<u64>,
) -> Result<UploadRecord, StoreError> {
    if let (Some(owner), Some(quota_bytes)) = (owner_id, quota_bytes) {
        crate::schema::users::table.find(owner).select(crate::schema::users::id).for_update().first::<i64>(conn)?;
        let already_mine = images::table
            .filter(images::owner_id.eq(owner))
            .filter(images::sha256.eq(&p.sha256))
            .count()
            .get_result::<i64>(conn)?
            > 0;
        let size = (p.bytes.len() + p.thumb.len()) as i64;
        if !already_mine && usage(conn, owner)? + size > quota_bytes.min(i64::MAX as u64) as i64 {
            return Err(StoreError::Quota { quota_mb: quota_bytes / 1_000_000 });
        }
    }
    let existing = image_blobs::table
        .find(&p.sha256)
        .select(image_blobs::sha256)
        .for_key_share()
        .first::<String>(conn)
        .optional()?;
    let mut new_blob = false;
    if existing.is_none() {
        let (key, thumb_key) =
            (format!("{}.{}", random_name(), p.extension), format!("{}_t.{}", random_name(), p.extension));
        storage.put(&key, &p.bytes)?;
        let written = storage.put(&thumb_key, &p.thumb).map_err(StoreError::from).and_then(|_| {
            diesel::insert_into(image_blobs::table)
                .values((
                    image_blobs::sha256.eq(&p.sha256),
                    image_blobs::content_type.eq(p.content_type),
                    image_blobs::byte_size.eq(p.bytes.len() as i32),
                    image_blobs::width.eq(p.width as i32),
                    image_blobs::height.eq(p.height as i32),
                    image_blobs::storage_key.eq(&key),
                    image_blobs::thumb_key.eq(&thumb_key),
                    image_blobs::thumb_size.eq(p.thumb.len() as i32),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .map_err(StoreError::from)
        });
        match written {
            // Inserted by us: the files are now referenced.
            Ok(1) => new_blob = true,
            // Someone stored the same content a moment ago: theirs wins.
            other => {
                let _ = storage.delete(&key);
                let _ = storage.delete(&thumb_key);
                other?;
                image_blobs::table.find(&p.sha256).select(image_blobs::sha256).for_key_share().first::<String>(conn)?;
            }
        }
    }
    let image = diesel::insert_into(images::table)
        .values((images::public_id.eq(random_name()), images::owner_id.eq(owner_id), images::sha256.eq(&p.sha256)))
        .returning(Image::as_returning())
        .get_result(conn)?;
    Ok(UploadRecord { image, new_blob })
}

/// A new use of an already stored image (sharing, importing): no new file.
pub fn copy(conn: &mut PgConnection, image_id: i64, owner_id: Option<i64>) -> QueryResult<Image> {
    let sha: String = images::table.find(image_id).select(images::sha256).first(conn)?;
    diesel::insert_into(images::table)
        .values((images::public_id.eq(random_name()), images::owner_id.eq(owner_id), images::sha256.eq(sha)))
        .returning(Image::as_returning())
        .get_result(conn)
}

pub fn find(conn: &mut PgConnection, image_id: i64) -> QueryResult<Image> {
    images::table.find(image_id).select(Image::as_select()).first(conn)
}

/// An image's hash, and what the audit log records of it being removed:
/// hash, size and type.
pub fn describe(conn: &mut PgConnection, image_id: i64) -> QueryResult<(String, serde_json::Value)> {
    let (sha, size, content_type): (String, i32, String) = images::table
        .inner_join(image_blobs::table)
        .filter(images::id.eq(image_id))
        .select((image_blobs::sha256, image_blobs::byte_size, image_blobs::content_type))
        .first(conn)?;
    let details = serde_json::json!({ "sha256": sha, "size": size, "content_type": content_type });
    Ok((sha, details))
}

/// Removes image rows (their blobs are swept afterwards).
pub fn delete(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<usize> {
    diesel::delete(images::table.filter(images::id.eq_any(ids))).execute(conn)
}

#[derive(QueryableByName)]
struct Orphan {
    #[diesel(sql_type = Text)]
    storage_key: String,
    #[diesel(sql_type = Text)]
    thumb_key: String,
}

/// Deletes blobs that no image uses any more (all of them when `only` is
/// `None`), then their files. Run outside other transactions: a file is
/// removed only after its row is gone for good. An upload racing to reuse
/// a blob holds a key-share lock, which makes this delete wait and then fail
/// on the new reference; such a blob is simply kept.
pub fn sweep_orphans(conn: &mut PgConnection, storage: &dyn Storage, only: Option<&[String]>) -> usize {
    let result = diesel::sql_query(
        "DELETE FROM image_blobs b
         WHERE ($1 OR b.sha256 = ANY($2))
           AND NOT EXISTS (SELECT 1 FROM images i WHERE i.sha256 = b.sha256)
         RETURNING b.storage_key, b.thumb_key",
    )
    .bind::<Bool, _>(only.is_none())
    .bind::<Array<Text>, _>(only.unwrap_or(&[]))
    .load::<Orphan>(conn);
    match result {
        Ok(rows) => {
            for o in &rows {
                for key in [&o.storage_key, &o.thumb_key] {
                    if let Err(e) = storage.delete(key) {
                        tracing::warn!(key = %key, error = %e, "could not remove an image file");
                    }
                }
            }
            rows.len()
        }
        Err(e) => {
            tracing::info!(error = %e, "image sweep skipped: a blob was reused concurrently");
            0
        }
    }
}

/// Removes stored files that no blob row names and that are older than
/// `grace`: left by an upload or import whose transaction failed or was
/// killed after writing them (and temporary files of interrupted writes).
/// The grace period keeps files of uploads still in flight.
pub fn sweep_stray_files(
    conn: &mut PgConnection,
    storage: &dyn Storage,
    grace: std::time::Duration,
) -> Result<usize, StoreError> {
    let files = storage.list()?;
    if files.is_empty() {
        return Ok(0);
    }
    let mut known: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (a, b) in
        image_blobs::table.select((image_blobs::storage_key, image_blobs::thumb_key)).load::<(String, String)>(conn)?
    {
        known.insert(a);
        known.insert(b);
    }
    let cutoff = std::time::SystemTime::now() - grace;
    let mut removed = 0;
    for (key, modified) in files {
        if known.contains(&key) || modified > cutoff {
            continue;
        }
        if storage.delete(&key).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}
