//! Custom achievements: rows, ownership-scoped queries, and set-based
//! evaluation of every condition after a sync.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Double, Nullable, Text, Timestamptz};
use get_size2::GetSize;
use serde_json::Value;

use super::condition::{describe_progress, percent_done, Condition};
use crate::images::ImageRef;
use crate::schema::custom_achievements;

/// One of a user's goals as a list shows it (the goals page, the
/// dashboard, a public profile): everything but its condition, whose JSON
/// can be tens of kilobytes and which no list needs.
#[derive(Debug, Clone, QueryableByName, GetSize)]
pub struct GoalCard {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub owner_id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub description: String,
    #[diesel(sql_type = Text)]
    pub condition_type: String,
    #[diesel(sql_type = Bool)]
    pub needs_edit: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub image_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub image_public_id: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub imported_from: Option<i64>,
    #[diesel(sql_type = Double)]
    pub progress_current: f64,
    #[diesel(sql_type = Double)]
    pub progress_target: f64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub met_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    /// Shared and visible in the community list.
    #[diesel(sql_type = Bool)]
    pub shared: bool,
}

/// One goal with its condition, as its edit page and export read it.
#[derive(Debug, Clone, QueryableByName)]
pub struct AchievementRow {
    #[diesel(embed)]
    pub card: GoalCard,
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    pub condition: Value,
}

/// A goal with its condition is a card with one field more: reading it
/// through the card keeps every use of `row.id`, `row.name`… one spelling.
impl std::ops::Deref for AchievementRow {
    type Target = GoalCard;
    fn deref(&self) -> &GoalCard {
        &self.card
    }
}

impl GoalCard {
    pub fn progress(&self) -> String {
        describe_progress(&self.condition_type, self.progress_current, self.progress_target)
    }
    /// How the date it was met reads: the last unlock it needed, or for
    /// playtime (which has no such moment) the sync that first saw it met.
    pub fn met_words(&self) -> Option<String> {
        let t = self.met_at?;
        Some(if self.condition_type == "playtime" {
            format!("Achieved by the sync of {} (when Questline first saw it met)", t.format("%Y-%m-%d"))
        } else if self.condition_type == "combined" {
            format!("Achieved {} (when enough of its parts were met)", t.format("%Y-%m-%d"))
        } else {
            format!("Achieved {} (your last unlock it needed)", t.format("%Y-%m-%d"))
        })
    }

    pub fn percent(&self) -> u32 {
        if self.met_at.is_some() {
            100
        } else {
            percent_done(self.progress_current, self.progress_target)
        }
    }
    pub fn image(&self) -> Option<ImageRef> {
        self.image_public_id.clone().map(|public_id| ImageRef { public_id })
    }
}

impl AchievementRow {
    pub fn parsed(&self) -> Option<Condition> {
        (!self.needs_edit).then(|| Condition::parse(&self.condition_type, &self.condition).ok()).flatten()
    }
}

/// The columns of a [`GoalCard`]; [`row_select`] adds the condition.
const CARD_SELECT: &str = "SELECT ca.id, ca.owner_id, ca.name, ca.description, ca.condition_type,
        ca.needs_edit, ca.image_id, i.public_id AS image_public_id, ca.imported_from, ca.progress_current,
        ca.progress_target, ca.met_at, ca.created_at,
        COALESCE(c.is_active AND c.hidden_at IS NULL, false) AS shared";
const CARD_FROM: &str = "FROM custom_achievements ca
    LEFT JOIN images i ON i.id = ca.image_id
    LEFT JOIN community_achievements c ON c.source_id = ca.id";

fn row_select() -> String {
    format!("{CARD_SELECT}, ca.condition {CARD_FROM}")
}

fn card_select() -> String {
    format!("{CARD_SELECT} {CARD_FROM}")
}

/// One page of a user's goals, newest first, and how many they have.
pub fn page_for(conn: &mut PgConnection, owner_id: i64, page: i64, per_page: i64) -> QueryResult<(Vec<GoalCard>, i64)> {
    let cards = diesel::sql_query(format!(
        "{} WHERE ca.owner_id = $1 ORDER BY ca.created_at DESC, ca.id DESC LIMIT $2 OFFSET $3",
        card_select()
    ))
    .bind::<BigInt, _>(owner_id)
    .bind::<BigInt, _>(per_page)
    .bind::<BigInt, _>(crate::pagination::offset(page, per_page))
    .load(conn)?;
    Ok((cards, count_for(conn, owner_id)?))
}

/// How many goals the user keeps.
pub fn count_for(conn: &mut PgConnection, owner_id: i64) -> QueryResult<i64> {
    custom_achievements::table.filter(custom_achievements::owner_id.eq(owner_id)).count().get_result(conn)
}

/// Takes the user's goal lock for the rest of the transaction and says
/// whether they may add `adding` more goals under `limit`. Two tabs (or
/// thirty parallel requests) adding goals wait for each other here, so
/// the count they check is the count they leave.
pub fn has_room(conn: &mut PgConnection, owner_id: i64, adding: i64, limit: i64) -> QueryResult<bool> {
    crate::db::lock_for_user(conn, crate::db::UserLock::Goals, owner_id)?;
    Ok(count_for(conn, owner_id)? + adding <= limit)
}

/// The user's goals after `after` (by id), `limit` at a time, with their
/// conditions: what the data export writes out a batch at a time.
pub fn batch_for(conn: &mut PgConnection, owner_id: i64, after: i64, limit: i64) -> QueryResult<Vec<AchievementRow>> {
    diesel::sql_query(format!("{} WHERE ca.owner_id = $1 AND ca.id > $2 ORDER BY ca.id LIMIT $3", row_select()))
        .bind::<BigInt, _>(owner_id)
        .bind::<BigInt, _>(after)
        .bind::<BigInt, _>(limit)
        .load(conn)
}

/// The conditions of these goals of the user, as `{type, data}` parts of a
/// combined goal: only goals that are sound and not combined themselves.
pub fn conditions_of(conn: &mut PgConnection, owner_id: i64, ids: &[i64]) -> QueryResult<Vec<Value>> {
    let rows: Vec<(String, Value)> = custom_achievements::table
        .filter(custom_achievements::owner_id.eq(owner_id))
        .filter(custom_achievements::id.eq_any(ids))
        .filter(custom_achievements::needs_edit.eq(false))
        .filter(custom_achievements::condition_type.ne("combined"))
        .order(custom_achievements::id)
        .select((custom_achievements::condition_type, custom_achievements::condition))
        .load(conn)?;
    Ok(rows.into_iter().map(|(kind, data)| serde_json::json!({ "type": kind, "data": data })).collect())
}

/// The user's goals that can be parts of a combined goal, for the form.
pub fn combinable(conn: &mut PgConnection, owner_id: i64) -> QueryResult<Vec<(i64, String)>> {
    custom_achievements::table
        .filter(custom_achievements::owner_id.eq(owner_id))
        .filter(custom_achievements::needs_edit.eq(false))
        .filter(custom_achievements::condition_type.ne("combined"))
        .order(custom_achievements::name)
        .select((custom_achievements::id, custom_achievements::name))
        .load(conn)
}

/// The names of the user's goals met after `since`, earliest first.
pub fn met_since(conn: &mut PgConnection, owner_id: i64, since: DateTime<Utc>) -> QueryResult<Vec<String>> {
    custom_achievements::table
        .filter(custom_achievements::owner_id.eq(owner_id))
        .filter(custom_achievements::met_at.gt(since))
        .order(custom_achievements::met_at.asc())
        .select(custom_achievements::name)
        .load(conn)
}

/// What `owner`'s progress on a condition would be, without keeping it:
/// a copy is stored and evaluated by the very statement that evaluates
/// real goals, then the transaction is rolled back. Returns (current,
/// target, met).
pub fn preview_progress(
    conn: &mut PgConnection,
    owner: i64,
    kind: &str,
    condition: &Value,
) -> QueryResult<(f64, f64, bool)> {
    #[derive(Debug)]
    enum Outcome {
        Preview(f64, f64, bool),
        Db(diesel::result::Error),
    }
    impl From<diesel::result::Error> for Outcome {
        fn from(e: diesel::result::Error) -> Self {
            Outcome::Db(e)
        }
    }
    let result = conn.transaction::<(), Outcome, _>(|conn| {
        let id = insert(
            conn,
            &NewCustomAchievement {
                owner_id: owner,
                name: "preview",
                description: "",
                condition_type: kind,
                condition,
                needs_edit: false,
                image_id: None,
                imported_from: None,
                created_at: None,
                legacy_id: None,
                import_run_id: None,
                id: None,
            },
        )?;
        evaluate_goals(conn, owner, &[id])?;
        let (current, target, met): (f64, f64, Option<DateTime<Utc>>) = custom_achievements::table
            .find(id)
            .select((
                custom_achievements::progress_current,
                custom_achievements::progress_target,
                custom_achievements::met_at,
            ))
            .first(conn)?;
        // Never kept: the error rolls everything back.
        Err(Outcome::Preview(current, target, met.is_some()))
    });
    match result {
        Err(Outcome::Preview(c, t, m)) => Ok((c, t, m)),
        Err(Outcome::Db(e)) => Err(e),
        Ok(()) => unreachable!("the preview transaction always rolls back"),
    }
}

/// The goals the user pinned, newest pin first.
pub fn pinned_for(conn: &mut PgConnection, owner_id: i64) -> QueryResult<Vec<GoalCard>> {
    diesel::sql_query(format!(
        "{} JOIN pins p ON p.goal_id = ca.id AND p.user_id = ca.owner_id
         WHERE ca.owner_id = $1 ORDER BY p.created_at DESC, ca.id",
        card_select()
    ))
    .bind::<BigInt, _>(owner_id)
    .load(conn)
}

/// The user's goals not met yet, closest to being met first.
pub fn closest_to_met(conn: &mut PgConnection, owner_id: i64, limit: i64) -> QueryResult<Vec<GoalCard>> {
    diesel::sql_query(format!(
        "{} WHERE ca.owner_id = $1 AND ca.met_at IS NULL AND NOT ca.needs_edit AND ca.progress_target > 0
         ORDER BY ca.progress_current / ca.progress_target DESC, ca.id LIMIT $2",
        card_select()
    ))
    .bind::<BigInt, _>(owner_id)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// One achievement, only if `owner_id` owns it: callers cannot forget the
/// ownership check, and another user's id looks exactly like a missing one.
pub fn find_owned(conn: &mut PgConnection, id: i64, owner_id: i64) -> QueryResult<Option<AchievementRow>> {
    diesel::sql_query(format!("{} WHERE ca.id = $1 AND ca.owner_id = $2", row_select()))
        .bind::<BigInt, _>(id)
        .bind::<BigInt, _>(owner_id)
        .get_result(conn)
        .optional()
}

/// The fields a user sets.
#[derive(Debug, Clone)]
pub struct AchievementInput {
    pub name: String,
    pub description: String,
    pub condition: Condition,
}

pub fn insert(conn: &mut PgConnection, new: &NewCustomAchievement<'_>) -> QueryResult<i64> {
    diesel::insert_into(custom_achievements::table).values(new).returning(custom_achievements::id).get_result(conn)
}

/// Inserts many at once (the legacy import); returns each row's id with
/// its owner and legacy id.
pub fn insert_many(
    conn: &mut PgConnection,
    rows: &[NewCustomAchievement<'_>],
) -> QueryResult<Vec<(i64, i64, Option<String>)>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    diesel::insert_into(custom_achievements::table)
        .values(rows)
        .returning((custom_achievements::id, custom_achievements::owner_id, custom_achievements::legacy_id))
        .get_results(conn)
}

/// A custom achievement to create: from the form, a copy of a shared one,
/// or one brought over from the legacy app. Every caller goes through
/// [`insert`].
#[derive(Debug, Insertable)]
#[diesel(table_name = custom_achievements)]
pub struct NewCustomAchievement<'a> {
    /// `None`: the next of the sequence. A dry run of the import gives its
    /// own, so it uses up none.
    pub id: Option<i64>,
    pub owner_id: i64,
    pub name: &'a str,
    pub description: &'a str,
    pub condition_type: &'a str,
    pub condition: &'a serde_json::Value,
    /// Its condition could not be read (legacy data): kept, not evaluated.
    pub needs_edit: bool,
    pub image_id: Option<i64>,
    /// The shared achievement it is a copy of.
    pub imported_from: Option<i64>,
    /// When it was made in the legacy app; `None` for now.
    pub created_at: Option<DateTime<Utc>>,
    pub legacy_id: Option<&'a str>,
    pub import_run_id: Option<i64>,
}

impl<'a> NewCustomAchievement<'a> {
    /// What the form describes, for `owner_id`. `condition` is the
    /// condition's JSON, which the caller keeps alive.
    pub fn from_input(owner_id: i64, input: &'a AchievementInput, condition: &'a serde_json::Value) -> Self {
        NewCustomAchievement {
            owner_id,
            name: &input.name,
            description: &input.description,
            condition_type: input.condition.kind(),
            condition,
            needs_edit: false,
            image_id: None,
            imported_from: None,
            created_at: None,
            legacy_id: None,
            import_run_id: None,
            id: None,
        }
    }
}

/// Takes the met mark off these goals (an import that set it was rolled
/// back); the next evaluation stamps it again if the goal still holds.
pub fn clear_met(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::update(custom_achievements::table.filter(custom_achievements::id.eq_any(ids)))
        .set(custom_achievements::met_at.eq(None::<chrono::DateTime<chrono::Utc>>))
        .execute(conn)
}

/// Deletes the achievements import run `run_id` gave accounts that existed
/// before it; returns their images (which the accounts keep otherwise).
pub fn delete_imported(conn: &mut PgConnection, run_id: i64) -> QueryResult<Vec<i64>> {
    let deleted: Vec<Option<i64>> =
        diesel::delete(custom_achievements::table.filter(custom_achievements::import_run_id.eq(run_id)))
            .returning(custom_achievements::image_id)
            .get_results(conn)?;
    Ok(deleted.into_iter().flatten().collect())
}

/// The goals these owners hold that came from the legacy app: (owner,
/// legacy id, id).
pub fn legacy_ids_of(conn: &mut PgConnection, owners: &[i64]) -> QueryResult<Vec<(i64, String, i64)>> {
    custom_achievements::table
        .filter(custom_achievements::owner_id.eq_any(owners))
        .filter(custom_achievements::legacy_id.is_not_null())
        .select((
            custom_achievements::owner_id,
            custom_achievements::legacy_id.assume_not_null(),
            custom_achievements::id,
        ))
        .load(conn)
}

/// Whether `owner_id` already holds a copy of shared achievement `community_id`.
pub fn has_copy_of(conn: &mut PgConnection, owner_id: i64, community_id: i64) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        custom_achievements::table
            .filter(custom_achievements::owner_id.eq(owner_id))
            .filter(custom_achievements::imported_from.eq(community_id)),
    ))
    .get_result(conn)
}

/// Saves an edit. A changed condition is a different goal: the date it was
/// met is cleared, and an imported copy stops counting for the shared one.
pub fn update(conn: &mut PgConnection, row: &AchievementRow, input: &AchievementInput) -> QueryResult<()> {
    let new_json = input.condition.to_json();
    let changed = row.needs_edit || row.condition_type != input.condition.kind() || row.condition != new_json;
    let target = custom_achievements::table.find(row.id).filter(custom_achievements::owner_id.eq(row.owner_id));
    diesel::update(target)
        .set((
            custom_achievements::name.eq(&input.name),
            custom_achievements::description.eq(&input.description),
            custom_achievements::condition_type.eq(input.condition.kind()),
            custom_achievements::condition.eq(new_json),
            custom_achievements::needs_edit.eq(false),
            custom_achievements::updated_at.eq(Utc::now()),
        ))
        .execute(conn)?;
    if changed {
        diesel::update(target)
            .set((
                custom_achievements::met_at.eq(None::<DateTime<Utc>>),
                custom_achievements::imported_from.eq(None::<i64>),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn set_image(conn: &mut PgConnection, id: i64, owner_id: i64, image_id: Option<i64>) -> QueryResult<()> {
    diesel::update(custom_achievements::table.find(id).filter(custom_achievements::owner_id.eq(owner_id)))
        .set(custom_achievements::image_id.eq(image_id))
        .execute(conn)
        .map(|_| ())
}

pub fn delete(conn: &mut PgConnection, id: i64, owner_id: i64) -> QueryResult<bool> {
    diesel::delete(custom_achievements::table.find(id).filter(custom_achievements::owner_id.eq(owner_id)))
        .execute(conn)
        .map(|n| n > 0)
}

/// What one evaluation did.
#[derive(Debug, QueryableByName, PartialEq, Eq)]
pub struct Evaluated {
    #[diesel(sql_type = BigInt)]
    pub evaluated: i64,
    #[diesel(sql_type = BigInt)]
    pub newly_met: i64,
}

/// Recomputes progress for every evaluable achievement of these users in
/// one statement (each condition type is a set-based branch, never a query
/// per achievement), stamps the first time each is met, and counts a
/// completion on the shared achievement an importer's copy came from.
/// Run after what changes every goal of a user (a sync, an import).
pub fn evaluate(conn: &mut PgConnection, user_ids: &[i64]) -> QueryResult<Evaluated> {
    evaluate_where(conn, user_ids, None)
}

/// [`evaluate`] for these goals of `owner` only: what a change to one goal
/// (created, edited, imported, taken up) needs, so its cost does not grow
/// with the other goals the user keeps.
pub fn evaluate_goals(conn: &mut PgConnection, owner: i64, goal_ids: &[i64]) -> QueryResult<Evaluated> {
    evaluate_where(conn, &[owner], Some(goal_ids))
}

fn evaluate_where(conn: &mut PgConnection, user_ids: &[i64], goal_ids: Option<&[i64]>) -> QueryResult<Evaluated> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        evaluated: i64,
        #[diesel(sql_type = BigInt)]
        newly_met: i64,
        /// The shared achievement of each copy newly met, and its owner.
        #[diesel(sql_type = Array<BigInt>)]
        completed_shares: Vec<i64>,
        #[diesel(sql_type = Array<BigInt>)]
        completed_by: Vec<i64>,
    }
    conn.transaction(|conn| {
        let row: Row = diesel::sql_query(EVALUATE_SQL)
            .bind::<Array<BigInt>, _>(user_ids)
            .bind::<Nullable<Array<BigInt>>, _>(goal_ids)
            .get_result(conn)?;
        let met: Vec<(i64, i64)> = row.completed_shares.into_iter().zip(row.completed_by).collect();
        crate::achievements::shared::model::count_completions(conn, &met)?;
        Ok(Evaluated { evaluated: row.evaluated, newly_met: row.newly_met })
    })
}

const EVALUATE_SQL: &str = r#"
WITH goals AS (
    SELECT id, owner_id, condition_type, condition
    FROM custom_achievements
    WHERE owner_id = ANY($1) AND NOT needs_edit AND ($2::int8[] IS NULL OR id = ANY($2))
),
-- Each goal's parts: a combined goal's conditions, numbered, or the goal
-- itself as part 0. Every branch below works per part.
cond AS (
    SELECT g.id, 0::int8 AS part, g.owner_id, g.condition_type, g.condition
    FROM goals g WHERE g.condition_type <> 'combined'
    UNION ALL
    SELECT g.id, p.ord AS part, g.owner_id, p.value ->> 'type', p.value -> 'data'
    FROM goals g
    CROSS JOIN LATERAL jsonb_array_elements(g.condition -> 'conditions') WITH ORDINALITY AS p(value, ord)
    WHERE g.condition_type = 'combined'
),
listed AS (
    SELECT c.id, c.part, g.value::bigint AS appid
    FROM cond c
    CROSS JOIN LATERAL jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(c.condition -> 'games') = 'array' THEN c.condition -> 'games' ELSE '[]'::jsonb END
    ) AS g(value)
    WHERE c.condition_type NOT IN ('specific_achievements', 'rare_achievements')
),
-- Sums over the listed games, per part.
listed_sums AS (
    SELECT l.id, l.part,
           sum(COALESCE(le.playtime_minutes, 0)) AS minutes,
           sum(COALESCE(le.unlocked_count, 0)) AS unlocked,
           sum(LEAST(COALESCE(le.unlocked_count, 0), COALESCE(gm.achievement_count, 0))) AS done,
           sum(COALESCE(gm.achievement_count, 0)) AS total,
           max(le.last_unlock_at) AS last_unlock
    FROM listed l
    JOIN cond c ON c.id = l.id AND c.part = l.part
    LEFT JOIN library_entries le ON le.user_id = c.owner_id AND le.appid = l.appid
    LEFT JOIN games gm ON gm.appid = l.appid
    GROUP BY l.id, l.part
),
-- Sums over each user's whole library, computed once per user and shared
-- by every part that names no games.
user_sums AS (
    SELECT le.user_id,
           sum(le.playtime_minutes) AS minutes,
           sum(le.unlocked_count) AS unlocked,
           sum(LEAST(le.unlocked_count, gm.achievement_count)) AS done,
           sum(gm.achievement_count) AS total,
           max(le.last_unlock_at) AS last_unlock
    FROM library_entries le
    JOIN games gm ON gm.appid = le.appid
    WHERE le.user_id = ANY($1)
      AND EXISTS (SELECT 1 FROM cond c WHERE c.owner_id = le.user_id AND NOT (c.condition ? 'games')
                  AND c.condition_type IN ('playtime', 'achievement_count', 'completion_rate'))
    GROUP BY le.user_id
),
sums AS (
    SELECT c.id, c.part, c.condition_type, c.condition,
           COALESCE(ls.minutes, us.minutes, 0) AS minutes,
           COALESCE(ls.unlocked, us.unlocked, 0) AS unlocked,
           COALESCE(ls.done, us.done, 0) AS done,
           COALESCE(ls.total, us.total, 0) AS total,
           COALESCE(ls.last_unlock, us.last_unlock) AS last_unlock
    FROM cond c
    LEFT JOIN listed_sums ls ON ls.id = c.id AND ls.part = c.part
    LEFT JOIN user_sums us ON us.user_id = c.owner_id AND NOT (c.condition ? 'games')
        AND c.condition_type IN ('playtime', 'achievement_count', 'completion_rate')
    WHERE c.condition_type NOT IN ('specific_achievements', 'rare_achievements')
),
progress AS (
    SELECT s.id, s.part,
        (CASE s.condition_type
            WHEN 'playtime' THEN s.minutes / 60.0
            WHEN 'achievement_count' THEN s.unlocked
            WHEN 'complete_games' THEN s.done
            ELSE COALESCE(100.0 * s.done / NULLIF(s.total, 0), 0)
        END)::float8 AS current,
        (CASE s.condition_type
            WHEN 'playtime' THEN (s.condition ->> 'hours')::float8
            WHEN 'achievement_count' THEN (s.condition ->> 'count')::float8
            WHEN 'complete_games' THEN s.total
            ELSE (s.condition ->> 'percent')::float8
        END)::float8 AS target,
        -- When it was met: the last unlock it needed; playtime has no such
        -- moment, so the sync that first sees it met stamps it.
        CASE WHEN s.condition_type = 'playtime' THEN NULL ELSE s.last_unlock END AS met_time
    FROM sums s
    UNION ALL
    SELECT c.id, c.part, count(ua.user_id)::float8, count(*)::float8, max(ua.unlocked_at)
    FROM cond c
    CROSS JOIN LATERAL jsonb_array_elements(c.condition -> 'achievements') AS a(value)
    LEFT JOIN game_achievements ga ON ga.appid = (a.value ->> 'appid')::bigint AND ga.api_name = a.value ->> 'api_name'
    LEFT JOIN user_achievements ua ON ua.user_id = c.owner_id AND ua.achievement_id = ga.id
    WHERE c.condition_type = 'specific_achievements'
    GROUP BY c.id, c.part
    UNION ALL
    -- Unlocks rarer than the percentage; met when the count-th of them
    -- (by unlock time) came.
    SELECT c.id, c.part, count(r.ok)::float8, (c.condition ->> 'count')::float8,
           (array_agg(r.at ORDER BY r.at NULLS LAST) FILTER (WHERE r.ok))[(c.condition ->> 'count')::int]
    FROM cond c
    LEFT JOIN LATERAL (
        SELECT TRUE AS ok, ua.unlocked_at AS at
        FROM user_achievements ua JOIN game_achievements ga ON ga.id = ua.achievement_id
        WHERE ua.user_id = c.owner_id AND ga.global_percent < (c.condition ->> 'percent')::float8
          AND (NOT (c.condition ? 'games')
               OR ga.appid IN (SELECT jsonb_array_elements_text(c.condition -> 'games')::bigint))
    ) r ON TRUE
    WHERE c.condition_type = 'rare_achievements'
    GROUP BY c.id, c.part, c.condition
),
-- Parts back into goals. A combined goal counts its parts met; it was met
-- when the k-th part was (k: all of them, 1, or n).
total AS (
    SELECT g.id,
        CASE WHEN g.condition_type = 'combined'
             THEN (count(*) FILTER (WHERE p.target > 0 AND p.current >= p.target))::float8
             ELSE max(p.current) END AS current,
        CASE WHEN g.condition_type <> 'combined' THEN max(p.target)
             WHEN g.condition ->> 'mode' = 'all' THEN count(*)::float8
             WHEN g.condition ->> 'mode' = 'any' THEN 1::float8
             ELSE (g.condition ->> 'n')::float8 END AS target,
        CASE WHEN g.condition_type <> 'combined' THEN max(p.met_time)
             ELSE (array_agg(COALESCE(p.met_time, now()) ORDER BY COALESCE(p.met_time, now()))
                       FILTER (WHERE p.target > 0 AND p.current >= p.target))[
                  CASE WHEN g.condition ->> 'mode' = 'all' THEN count(*)::int
                       WHEN g.condition ->> 'mode' = 'any' THEN 1
                       ELSE (g.condition ->> 'n')::int END]
        END AS met_time
    FROM progress p JOIN goals g ON g.id = p.id
    GROUP BY g.id, g.condition_type, g.condition
),
upd AS (
    UPDATE custom_achievements ca
    SET progress_current = p.current,
        progress_target = p.target,
        met_at = CASE WHEN ca.met_at IS NULL AND p.target > 0 AND p.current >= p.target
                      THEN LEAST(COALESCE(p.met_time, now()), now()) ELSE ca.met_at END,
        evaluated_at = now()
    FROM total p
    JOIN custom_achievements prev ON prev.id = p.id
    WHERE ca.id = p.id
    RETURNING ca.imported_from, ca.owner_id, (prev.met_at IS NULL AND ca.met_at IS NOT NULL) AS newly
)
SELECT count(*) AS evaluated, count(*) FILTER (WHERE newly) AS newly_met,
       coalesce(array_agg(imported_from ORDER BY imported_from, owner_id)
                FILTER (WHERE newly AND imported_from IS NOT NULL), '{}') AS completed_shares,
       coalesce(array_agg(owner_id ORDER BY imported_from, owner_id)
                FILTER (WHERE newly AND imported_from IS NOT NULL), '{}') AS completed_by
FROM upd
"#;
