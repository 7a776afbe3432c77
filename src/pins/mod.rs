//! Pins: achievements and goals a user tracks on the dashboard.

pub mod routes;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Nullable, Text, Timestamptz};

use crate::schema::pins;

/// Pins per user at most: the dashboard is not a second library.
pub const MAX_PINS: i64 = 20;

/// What a pin points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Achievement(i64),
    Goal(i64),
}

/// What pinning did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pinned {
    Done,
    /// Already at [`MAX_PINS`].
    Full,
    /// Not the user's: a goal of someone else, or an achievement of a game
    /// outside their library.
    NotFound,
}

/// Pins `target` for the user (pinning twice is one pin).
pub fn pin(conn: &mut PgConnection, user_id: i64, target: Target) -> QueryResult<Pinned> {
    conn.transaction(|conn| {
        #[derive(QueryableByName)]
        struct Ok {
            #[diesel(sql_type = Bool)]
            ok: bool,
        }
        let allowed: Ok = match target {
            Target::Achievement(_) => diesel::sql_query(
                "SELECT EXISTS (SELECT 1 FROM game_achievements ga
                                JOIN library_entries le ON le.appid = ga.appid AND le.user_id = $1
                                WHERE ga.id = $2) AS ok",
            ),
            Target::Goal(_) => diesel::sql_query(
                "SELECT EXISTS (SELECT 1 FROM custom_achievements WHERE owner_id = $1 AND id = $2) AS ok",
            ),
        }
        .bind::<BigInt, _>(user_id)
        .bind::<BigInt, _>(match target {
            Target::Achievement(id) | Target::Goal(id) => id,
        })
        .get_result(conn)?;
        if !allowed.ok {
            return Ok(Pinned::NotFound);
        }
        // Counted under the user's pin lock, so two tabs (or thirty
        // parallel requests, from no pins at all) cannot both add the
        // twentieth.
        crate::db::lock_for_user(conn, crate::db::UserLock::Pins, user_id)?;
        let count: i64 = pins::table.filter(pins::user_id.eq(user_id)).count().get_result(conn)?;
        if count >= MAX_PINS {
            return Ok(Pinned::Full);
        }
        let (achievement_id, goal_id) = match target {
            Target::Achievement(id) => (Some(id), None),
            Target::Goal(id) => (None, Some(id)),
        };
        diesel::insert_into(pins::table)
            .values((pins::user_id.eq(user_id), pins::achievement_id.eq(achievement_id), pins::goal_id.eq(goal_id)))
            .on_conflict_do_nothing()
            .execute(conn)?;
        Ok(Pinned::Done)
    })
}

/// Unpins `target`; true when there was such a pin.
pub fn unpin(conn: &mut PgConnection, user_id: i64, target: Target) -> QueryResult<bool> {
    let mine = pins::table.filter(pins::user_id.eq(user_id));
    let n = match target {
        Target::Achievement(id) => diesel::delete(mine.filter(pins::achievement_id.eq(id))).execute(conn)?,
        Target::Goal(id) => diesel::delete(mine.filter(pins::goal_id.eq(id))).execute(conn)?,
    };
    Ok(n > 0)
}

/// The user's pinned achievements' ids and pinned goals' ids.
pub fn pinned_ids(conn: &mut PgConnection, user_id: i64) -> QueryResult<(Vec<i64>, Vec<i64>)> {
    let rows: Vec<(Option<i64>, Option<i64>)> =
        pins::table.filter(pins::user_id.eq(user_id)).select((pins::achievement_id, pins::goal_id)).load(conn)?;
    Ok((rows.iter().filter_map(|r| r.0).collect(), rows.iter().filter_map(|r| r.1).collect()))
}

/// A pinned achievement as the dashboard shows it.
#[derive(Debug, Clone, QueryableByName, get_size2::GetSize)]
pub struct PinnedAchievement {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub appid: i64,
    #[diesel(sql_type = Text)]
    pub game: String,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub description: Option<String>,
    #[diesel(sql_type = Bool)]
    pub hidden: bool,
    #[diesel(sql_type = Nullable<Text>)]
    pub icon_url: Option<String>,
    #[diesel(sql_type = Nullable<Double>)]
    pub global_percent: Option<f64>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub points: i32,
    #[diesel(sql_type = Bool)]
    pub unlocked: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub unlocked_at: Option<DateTime<Utc>>,
}

impl PinnedAchievement {
    /// Hidden achievements stay secret until unlocked, pinned or not.
    pub fn masked(&self) -> bool {
        self.hidden && !self.unlocked
    }
}

/// The user's pinned achievements, locked ones first, then newest pins.
pub fn pinned_achievements(conn: &mut PgConnection, user_id: i64) -> QueryResult<Vec<PinnedAchievement>> {
    diesel::sql_query(
        "SELECT ga.id, ga.appid, g.name AS game, ga.display_name AS name, ga.description, ga.hidden,
                CASE WHEN ua.user_id IS NULL THEN coalesce(ga.icon_gray_url, ga.icon_url) ELSE ga.icon_url END AS icon_url,
                ga.global_percent, ga.points, (ua.user_id IS NOT NULL) AS unlocked, ua.unlocked_at
         FROM pins p
         JOIN game_achievements ga ON ga.id = p.achievement_id
         JOIN games g ON g.appid = ga.appid
         LEFT JOIN user_achievements ua ON ua.user_id = p.user_id AND ua.achievement_id = ga.id
         WHERE p.user_id = $1 AND ga.removed_at IS NULL
         ORDER BY (ua.user_id IS NOT NULL), p.created_at DESC",
    )
    .bind::<BigInt, _>(user_id)
    .load(conn)
}
