//! Shared achievements. A share is a snapshot of its source achievement,
//! kept in step with it while the source exists, with its own image row on
//! the same stored file, so it outlives its creator's account.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Integer, Nullable, Text, Timestamptz};

use super::super::achievements::condition::describe_progress;
use crate::images::model as images;
use crate::images::ImageRef;
use crate::schema::{community_achievements, custom_achievements};

/// Shared achievements per page.
pub const PAGE_SIZE: i64 = 20;

/// Shares or re-shares a user's achievement; returns the community id.
/// Returns `None` when `source_id` is not the user's.
pub fn share(conn: &mut PgConnection, source_id: i64, owner_id: i64) -> QueryResult<Option<i64>> {
    let found = custom_achievements::table
        .find(source_id)
        .filter(custom_achievements::owner_id.eq(owner_id))
        .select(custom_achievements::id)
        .first::<i64>(conn)
        .optional()?;
    if found.is_none() {
        return Ok(None);
    }
    let existing = community_achievements::table
        .filter(community_achievements::source_id.eq(source_id))
        .select(community_achievements::id)
        .first::<i64>(conn)
        .optional()?;
    let id = match existing {
        Some(id) => {
            diesel::update(community_achievements::table.find(id))
                .set(community_achievements::is_active.eq(true))
                .execute(conn)?;
            id
        }
        None => diesel::insert_into(community_achievements::table)
            .values((
                community_achievements::source_id.eq(source_id),
                community_achievements::creator_id.eq(owner_id),
                community_achievements::name.eq(""),
                community_achievements::condition_type.eq(""),
                community_achievements::condition.eq(serde_json::json!({})),
            ))
            .returning(community_achievements::id)
            .get_result(conn)?,
    };
    refresh_from_source(conn, source_id)?;
    Ok(Some(id))
}

/// Copies the source's text, condition and image into its share, if any.
/// Returns the hashes of image files the share stopped using.
pub fn refresh_from_source(conn: &mut PgConnection, source_id: i64) -> QueryResult<Vec<String>> {
    let Some((id, image_id)) = community_achievements::table
        .filter(community_achievements::source_id.eq(source_id))
        .select((community_achievements::id, community_achievements::image_id))
        .first::<(i64, Option<i64>)>(conn)
        .optional()?
    else {
        return Ok(Vec::new());
    };
    let (name, description, kind, condition, needs_edit, source_image): (
        String,
        String,
        String,
        serde_json::Value,
        bool,
        Option<i64>,
    ) = custom_achievements::table
        .find(source_id)
        .select((
            custom_achievements::name,
            custom_achievements::description,
            custom_achievements::condition_type,
            custom_achievements::condition,
            custom_achievements::needs_edit,
            custom_achievements::image_id,
        ))
        .first(conn)?;
    let current_sha = match image_id {
        Some(i) => Some(images::find(conn, i)?.sha256),
        None => None,
    };
    let source_sha = match source_image {
        Some(i) => Some(images::find(conn, i)?.sha256),
        None => None,
    };
    let mut released = Vec::new();
    let mut new_image = image_id;
    if current_sha != source_sha {
        new_image = match source_image {
            Some(i) => Some(images::copy(conn, i, None)?.id),
            None => None,
        };
        if let (Some(old), Some(sha)) = (image_id, current_sha) {
            // Detach first: the share must not point at a deleted row.
            diesel::update(community_achievements::table.find(id))
                .set(community_achievements::image_id.eq(None::<i64>))
                .execute(conn)?;
            images::delete(conn, &[old])?;
            released.push(sha);
        }
    }
    diesel::update(community_achievements::table.find(id))
        .set((
            community_achievements::name.eq(name),
            community_achievements::description.eq(description),
            community_achievements::condition_type.eq(kind),
            community_achievements::condition.eq(condition),
            community_achievements::needs_edit.eq(needs_edit),
            community_achievements::image_id.eq(new_image),
        ))
        .execute(conn)?;
    Ok(released)
}

/// Shows or withdraws the share of `source_id`.
pub fn set_active(conn: &mut PgConnection, source_id: i64, active: bool) -> QueryResult<bool> {
    diesel::update(community_achievements::table.filter(community_achievements::source_id.eq(source_id)))
        .set(community_achievements::is_active.eq(active))
        .execute(conn)
        .map(|n| n > 0)
}

/// One shared achievement in the list.
#[derive(Debug, Clone, QueryableByName)]
pub struct SharedRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub description: String,
    #[diesel(sql_type = Text)]
    pub condition_type: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub creator: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub creator_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub image_public_id: Option<String>,
    #[diesel(sql_type = Integer)]
    pub tries_count: i32,
    #[diesel(sql_type = Integer)]
    pub completions_count: i32,
    #[diesel(sql_type = Timestamptz)]
    pub shared_at: DateTime<Utc>,
    /// The viewer already has a copy.
    #[diesel(sql_type = Bool)]
    pub imported: bool,
    #[diesel(sql_type = BigInt)]
    pub total_rows: i64,
    #[diesel(sql_type = Double)]
    pub target: f64,
}

impl SharedRow {
    pub fn image(&self) -> Option<ImageRef> {
        self.image_public_id.clone().map(|public_id| ImageRef { public_id })
    }
    pub fn creator_name(&self) -> &str {
        self.creator.as_deref().unwrap_or("deleted user")
    }
    pub fn goal(&self) -> String {
        let kind = self.condition_type.as_str();
        match kind {
            "playtime" | "completion_rate" => describe_progress(kind, 0.0, self.target)
                .split_once(" of ")
                .map(|(_, t)| format!("Reach {t}"))
                .unwrap_or_default(),
            "achievement_count" => format!("Unlock {} achievements", self.target as i64),
            "complete_games" => "Complete every achievement of the listed games".into(),
            _ => "Unlock the listed achievements".into(),
        }
    }
    pub fn own(&self, viewer: &i64) -> bool {
        self.creator_id == Some(*viewer)
    }
}

/// One page of the visible shared achievements; `imported` is always
/// false for a visitor (`viewer_id` `None`).
pub fn browse(
    conn: &mut PgConnection,
    viewer_id: Option<i64>,
    search: &str,
    sort: &str,
    page: i64,
) -> QueryResult<Vec<SharedRow>> {
    let order = match sort {
        "tried" => "c.tries_count DESC, c.shared_at DESC",
        "completed" => "c.completions_count DESC, c.shared_at DESC",
        _ => "c.shared_at DESC",
    };
    let pattern = crate::db::contains_pattern(search);
    diesel::sql_query(format!(
        "SELECT c.id, c.name, c.description, c.condition_type, u.username AS creator, c.creator_id,
                i.public_id AS image_public_id, c.tries_count, c.completions_count, c.shared_at,
                EXISTS (SELECT 1 FROM custom_achievements m WHERE m.owner_id = $1 AND m.imported_from = c.id) AS imported,
                count(*) OVER () AS total_rows,
                COALESCE((c.condition ->> 'hours')::float8, (c.condition ->> 'count')::float8,
                         (c.condition ->> 'percent')::float8, 0) AS target
         FROM community_achievements c
         LEFT JOIN users u ON u.id = c.creator_id
         LEFT JOIN images i ON i.id = c.image_id
         WHERE c.is_active AND c.hidden_at IS NULL
           AND ($2 = '' OR c.name ILIKE $3 OR c.description ILIKE $3)
         ORDER BY {order}, c.id DESC
         LIMIT $4 OFFSET $5"
    ))
    .bind::<diesel::sql_types::Nullable<BigInt>, _>(viewer_id)
    .bind::<Text, _>(search)
    .bind::<Text, _>(&pattern)
    .bind::<BigInt, _>(PAGE_SIZE)
    .bind::<BigInt, _>(crate::pagination::offset(page, PAGE_SIZE))
    .load(conn)
}

/// Why an import did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    Imported(i64),
    NotFound,
    Own,
    Already,
}

/// Copies a visible shared achievement into the user's list and counts a
/// try. The per-user unique index makes a double click harmless.
pub fn import(conn: &mut PgConnection, community_id: i64, user_id: i64) -> QueryResult<ImportOutcome> {
    conn.transaction(|conn| {
        let found = community_achievements::table
            .find(community_id)
            .filter(community_achievements::is_active.eq(true))
            .filter(community_achievements::hidden_at.is_null())
            .select((
                community_achievements::creator_id,
                community_achievements::name,
                community_achievements::description,
                community_achievements::condition_type,
                community_achievements::condition,
                community_achievements::needs_edit,
                community_achievements::image_id,
            ))
            .for_update()
            .first::<(Option<i64>, String, String, String, serde_json::Value, bool, Option<i64>)>(conn)
            .optional()?;
        let Some((creator, name, description, kind, condition, needs_edit, image_id)) = found else {
            return Ok(ImportOutcome::NotFound);
        };
        if creator == Some(user_id) {
            return Ok(ImportOutcome::Own);
        }
        let already = custom_achievements::table
            .filter(custom_achievements::owner_id.eq(user_id))
            .filter(custom_achievements::imported_from.eq(community_id))
            .count()
            .get_result::<i64>(conn)?;
        if already > 0 {
            return Ok(ImportOutcome::Already);
        }
        let image = match image_id {
            Some(i) => Some(images::copy(conn, i, Some(user_id))?.id),
            None => None,
        };
        let id = diesel::insert_into(custom_achievements::table)
            .values((
                custom_achievements::owner_id.eq(user_id),
                custom_achievements::name.eq(name),
                custom_achievements::description.eq(description),
                custom_achievements::condition_type.eq(kind),
                custom_achievements::condition.eq(condition),
                custom_achievements::needs_edit.eq(needs_edit),
                custom_achievements::image_id.eq(image),
                custom_achievements::imported_from.eq(community_id),
            ))
            .returning(custom_achievements::id)
            .get_result::<i64>(conn)?;
        diesel::update(community_achievements::table.find(community_id))
            .set(community_achievements::tries_count.eq(community_achievements::tries_count + 1))
            .execute(conn)?;
        Ok(ImportOutcome::Imported(id))
    })
}

#[derive(Debug, QueryableByName)]
pub struct ModerationRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub description: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    pub creator: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub tries_count: i32,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub is_active: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<Timestamptz>)]
    pub hidden_at: Option<DateTime<Utc>>,
}

/// The latest 200 shared achievements, hidden ones included, for the
/// moderation page.
pub fn moderation_list(conn: &mut PgConnection) -> QueryResult<Vec<ModerationRow>> {
    diesel::sql_query(
        "SELECT c.id, c.name, c.description, u.username AS creator, c.tries_count, c.is_active, c.hidden_at
         FROM community_achievements c LEFT JOIN users u ON u.id = c.creator_id
         ORDER BY c.shared_at DESC, c.id DESC LIMIT 200",
    )
    .load(conn)
}

/// Hides a shared achievement from the community (by the admin
/// `hidden_by`), or restores it with `None`. False when there is no such one.
pub fn set_hidden(conn: &mut PgConnection, id: i64, hidden_by: Option<i64>) -> QueryResult<bool> {
    let n = diesel::update(community_achievements::table.find(id))
        .set((
            community_achievements::hidden_at.eq(hidden_by.map(|_| chrono::Utc::now())),
            community_achievements::hidden_by.eq(hidden_by),
        ))
        .execute(conn)?;
    Ok(n > 0)
}
