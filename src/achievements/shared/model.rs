//! Shared achievements. A share is a snapshot of its source achievement,
//! kept in step with it while the source exists, with its own image row on
//! the same stored file, so it outlives its creator's account.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Integer, Nullable, Text, Timestamptz};

use crate::achievements::condition::describe_progress;
use crate::images::model as images;
use crate::images::ImageRef;
use crate::schema::{community_achievements, community_takers, custom_achievements};

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
#[derive(Debug, Clone, QueryableByName, get_size2::GetSize)]
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
            "rare_achievements" => format!("Unlock {} rare achievements", self.target as i64),
            "combined" => format!("Meet {} of its combined conditions", self.target as i64),
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

/// A visible shared achievement as a copy of it needs it.
#[derive(Debug, Queryable)]
pub struct ShareToCopy {
    pub creator_id: Option<i64>,
    pub name: String,
    pub description: String,
    pub condition_type: String,
    pub condition: serde_json::Value,
    pub needs_edit: bool,
    pub image_id: Option<i64>,
}

/// Reads a visible shared achievement under a row lock, to copy it.
pub fn lock_for_copy(conn: &mut PgConnection, community_id: i64) -> QueryResult<Option<ShareToCopy>> {
    community_achievements::table
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
        .first(conn)
        .optional()
}

/// Counts `user_id` as having taken the shared achievement up: a try the
/// first time only, so deleting the copy and taking it up again (or a
/// double click) counts nothing more. True when it counted.
pub fn count_try(conn: &mut PgConnection, community_id: i64, user_id: i64) -> QueryResult<bool> {
    let new = diesel::insert_into(community_takers::table)
        .values((community_takers::community_id.eq(community_id), community_takers::user_id.eq(user_id)))
        .on_conflict_do_nothing()
        .execute(conn)?;
    if new > 0 {
        diesel::update(community_achievements::table.find(community_id))
            .set(community_achievements::tries_count.eq(community_achievements::tries_count + 1))
            .execute(conn)?;
    }
    Ok(new > 0)
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

/// A shared achievement the importer brings over from the legacy app.
#[derive(Debug, Insertable)]
#[diesel(table_name = community_achievements)]
pub struct ImportedShare {
    /// `None`: the next of the sequence (a dry run gives its own).
    pub id: Option<i64>,
    pub creator_id: Option<i64>,
    pub name: String,
    pub description: String,
    pub condition_type: String,
    pub condition: serde_json::Value,
    pub needs_edit: bool,
    pub image_id: Option<i64>,
    pub tries_count: i32,
    pub completions_count: i32,
    pub shared_at: chrono::DateTime<chrono::Utc>,
    pub is_active: bool,
    pub legacy_id: String,
    pub import_run_id: i64,
}

/// Inserts an imported shared achievement; returns its id.
pub fn insert_imported(conn: &mut PgConnection, share: &ImportedShare) -> QueryResult<i64> {
    diesel::insert_into(community_achievements::table)
        .values(share)
        .returning(community_achievements::id)
        .get_result(conn)
}

/// The shared achievements an earlier import brought, by legacy id.
pub fn ids_by_legacy_id(conn: &mut PgConnection) -> QueryResult<std::collections::HashMap<String, i64>> {
    Ok(community_achievements::table
        .filter(community_achievements::legacy_id.is_not_null())
        .select((community_achievements::legacy_id.assume_not_null(), community_achievements::id))
        .load::<(String, i64)>(conn)?
        .into_iter()
        .collect())
}

/// Whether a shared achievement already comes from custom achievement `source_id`.
pub fn source_taken(conn: &mut PgConnection, source_id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        community_achievements::table.filter(community_achievements::source_id.eq(source_id)),
    ))
    .get_result(conn)
}

/// Links a shared achievement to the custom achievement it was shared from.
pub fn link_source(conn: &mut PgConnection, id: i64, source_id: i64) -> QueryResult<()> {
    diesel::update(community_achievements::table.find(id))
        .set(community_achievements::source_id.eq(source_id))
        .execute(conn)
        .map(|_| ())
}

/// Sets the tries and completions counters (the legacy app's own, after
/// an import re-evaluated everything).
pub fn set_counts(conn: &mut PgConnection, ids: &[i64], tries: &[i32], completions: &[i32]) -> QueryResult<usize> {
    use diesel::sql_types::{Array, BigInt, Integer};
    diesel::sql_query(
        "UPDATE community_achievements c SET tries_count = t.tries, completions_count = t.completions
         FROM unnest($1::bigint[], $2::int[], $3::int[]) AS t(id, tries, completions) WHERE c.id = t.id",
    )
    .bind::<Array<BigInt>, _>(ids)
    .bind::<Array<Integer>, _>(tries)
    .bind::<Array<Integer>, _>(completions)
    .execute(conn)
}

/// Counts a completion of each shared achievement in `met` (pairs of
/// shared achievement and the user whose copy was met), once per user
/// ever: a copy deleted, taken up again and met again counts nothing more.
pub fn count_completions(conn: &mut PgConnection, met: &[(i64, i64)]) -> QueryResult<usize> {
    if met.is_empty() {
        return Ok(0);
    }
    let (ids, users): (Vec<i64>, Vec<i64>) = met.iter().copied().unzip();
    diesel::sql_query(
        "WITH firsts AS (
             INSERT INTO community_takers (community_id, user_id, completed_at)
             SELECT DISTINCT t.id, t.uid, now() FROM unnest($1::bigint[], $2::bigint[]) AS t(id, uid)
             WHERE EXISTS (SELECT 1 FROM community_achievements c WHERE c.id = t.id)
             ON CONFLICT (community_id, user_id) DO UPDATE SET completed_at = excluded.completed_at
                 WHERE community_takers.completed_at IS NULL
             RETURNING community_id
         )
         UPDATE community_achievements s SET completions_count = s.completions_count + n.cnt
         FROM (SELECT community_id AS id, count(*)::int AS cnt FROM firsts GROUP BY community_id) n
         WHERE s.id = n.id",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(&ids)
    .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(&users)
    .execute(conn)
}

/// Moves shared goals' counters back by what an import added to them
/// (never below zero), whatever else moved them since.
pub fn take_back_counts(
    conn: &mut PgConnection,
    ids: &[i64],
    tries: &[i32],
    completions: &[i32],
) -> QueryResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::sql_query(
        "UPDATE community_achievements s
         SET tries_count = GREATEST(s.tries_count - d.t, 0), completions_count = GREATEST(s.completions_count - d.c, 0)
         FROM unnest($1::int8[], $2::int4[], $3::int4[]) AS d(id, t, c)
         WHERE s.id = d.id AND (d.t <> 0 OR d.c <> 0)",
    )
    .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(ids)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Integer>, _>(tries)
    .bind::<diesel::sql_types::Array<diesel::sql_types::Integer>, _>(completions)
    .execute(conn)
}

/// Deletes the shared achievements import run `run_id` brought; returns how
/// many, and their images (which belong to no user, so do not cascade).
pub fn delete_imported(conn: &mut PgConnection, run_id: i64) -> QueryResult<(usize, Vec<i64>)> {
    let images: Vec<i64> = community_achievements::table
        .filter(community_achievements::import_run_id.eq(run_id))
        .select(community_achievements::image_id)
        .load::<Option<i64>>(conn)?
        .into_iter()
        .flatten()
        .collect();
    let n = diesel::delete(community_achievements::table.filter(community_achievements::import_run_id.eq(run_id)))
        .execute(conn)?;
    Ok((n, images))
}

/// How many shared achievements a user created that are still listed.
pub fn count_by_creator(conn: &mut PgConnection, creator_id: i64) -> QueryResult<i64> {
    community_achievements::table
        .filter(community_achievements::creator_id.eq(creator_id))
        .filter(community_achievements::is_active.eq(true))
        .count()
        .get_result(conn)
}

/// A visible shared achievement with its condition, for its own page.
#[derive(Debug, Clone)]
pub struct SharedDetail {
    pub row: SharedRow,
    pub condition: serde_json::Value,
    pub needs_edit: bool,
}

/// A visible shared achievement, as `viewer` sees it.
pub fn find_visible(conn: &mut PgConnection, id: i64, viewer_id: Option<i64>) -> QueryResult<Option<SharedDetail>> {
    let row: Option<SharedRow> = diesel::sql_query(
        "SELECT c.id, c.name, c.description, c.condition_type, u.username AS creator, c.creator_id,
                i.public_id AS image_public_id, c.tries_count, c.completions_count, c.shared_at,
                EXISTS (SELECT 1 FROM custom_achievements m WHERE m.owner_id = $1 AND m.imported_from = c.id) AS imported,
                1::int8 AS total_rows,
                COALESCE((c.condition ->> 'hours')::float8, (c.condition ->> 'count')::float8,
                         (c.condition ->> 'percent')::float8, 0) AS target
         FROM community_achievements c
         LEFT JOIN users u ON u.id = c.creator_id
         LEFT JOIN images i ON i.id = c.image_id
         WHERE c.id = $2 AND c.is_active AND c.hidden_at IS NULL",
    )
    .bind::<diesel::sql_types::Nullable<BigInt>, _>(viewer_id)
    .bind::<BigInt, _>(id)
    .get_result(conn)
    .optional()?;
    let Some(row) = row else { return Ok(None) };
    let (condition, needs_edit) = community_achievements::table
        .find(id)
        .select((community_achievements::condition, community_achievements::needs_edit))
        .first(conn)?;
    Ok(Some(SharedDetail { row, condition, needs_edit }))
}
