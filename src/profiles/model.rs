//! `user_preferences`: what a user shares (public profile and its parts,
//! leaderboards) and is sent (the weekly digest). No row means every
//! default: nothing shared, nothing sent.

use base64::Engine;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamptz};
use rand::RngCore;

use crate::schema::user_preferences;

/// A user's choices.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = user_preferences, check_for_backend(diesel::pg::Pg))]
pub struct Preferences {
    pub profile_public: bool,
    pub show_stats: bool,
    pub show_perfect: bool,
    pub show_library: bool,
    pub show_goals: bool,
    pub on_leaderboard: bool,
    pub weekly_digest: bool,
}

impl Default for Preferences {
    /// Private by default; when the profile is turned on, stats and perfect
    /// games show unless unticked.
    fn default() -> Self {
        Preferences {
            profile_public: false,
            show_stats: true,
            show_perfect: true,
            show_library: false,
            show_goals: false,
            on_leaderboard: false,
            weekly_digest: false,
        }
    }
}

/// A user's choices, or the defaults.
pub fn of(conn: &mut PgConnection, user_id: i64) -> QueryResult<Preferences> {
    Ok(user_preferences::table
        .find(user_id)
        .select(Preferences::as_select())
        .first(conn)
        .optional()?
        .unwrap_or_default())
}

fn new_token() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Stores the user's choices.
pub fn save(conn: &mut PgConnection, user_id: i64, p: &Preferences) -> QueryResult<()> {
    let values = (
        user_preferences::profile_public.eq(p.profile_public),
        user_preferences::show_stats.eq(p.show_stats),
        user_preferences::show_perfect.eq(p.show_perfect),
        user_preferences::show_library.eq(p.show_library),
        user_preferences::show_goals.eq(p.show_goals),
        user_preferences::on_leaderboard.eq(p.on_leaderboard),
        user_preferences::weekly_digest.eq(p.weekly_digest),
        user_preferences::updated_at.eq(diesel::dsl::now),
    );
    diesel::insert_into(user_preferences::table)
        .values((user_preferences::user_id.eq(user_id), user_preferences::unsubscribe_token.eq(new_token()), values))
        .on_conflict(user_preferences::user_id)
        .do_update()
        .set(values)
        .execute(conn)
        .map(|_| ())
}

/// Turns the digest off for whoever holds `token`; their username, or
/// `None` for a token nobody holds.
pub fn unsubscribe(conn: &mut PgConnection, token: &str) -> QueryResult<Option<String>> {
    diesel::sql_query(
        "UPDATE user_preferences p SET weekly_digest = FALSE, updated_at = now()
         FROM users u WHERE p.unsubscribe_token = $1 AND u.id = p.user_id
         RETURNING u.username",
    )
    .bind::<Text, _>(token)
    .get_result::<Username>(conn)
    .optional()
    .map(|r| r.map(|r| r.username))
}

#[derive(QueryableByName)]
struct Username {
    #[diesel(sql_type = Text)]
    username: String,
}

/// Whether `token` is someone's unsubscribe token (the confirmation page
/// checks before offering the button).
pub fn token_exists(conn: &mut PgConnection, token: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(user_preferences::table.filter(user_preferences::unsubscribe_token.eq(token))))
        .get_result(conn)
}

/// A user whose profile others may see.
#[derive(Debug, Clone, QueryableByName, get_size2::GetSize)]
pub struct PublicUser {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    pub avatar_url: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub persona_name: Option<String>,
    #[diesel(sql_type = Bool)]
    pub profile_public: bool,
    #[diesel(sql_type = Bool)]
    pub show_stats: bool,
    #[diesel(sql_type = Bool)]
    pub show_perfect: bool,
    #[diesel(sql_type = Bool)]
    pub show_library: bool,
    #[diesel(sql_type = Bool)]
    pub show_goals: bool,
    /// The owner proved their linked SteamID (signed in through Steam):
    /// only then does anything from Steam show to others.
    #[diesel(sql_type = Bool)]
    pub steam_verified: bool,
    /// A SteamID is linked, proven or not.
    #[diesel(sql_type = Bool)]
    pub steam_linked: bool,
}

/// An active account by username (by [`crate::names::key`]), with its choices.
pub fn find_profile(conn: &mut PgConnection, username: &str) -> QueryResult<Option<PublicUser>> {
    diesel::sql_query(
        "SELECT u.id, u.username, u.created_at, s.avatar_url, s.persona_name,
                coalesce(p.profile_public, FALSE) AS profile_public, coalesce(p.show_stats, TRUE) AS show_stats,
                coalesce(p.show_perfect, TRUE) AS show_perfect, coalesce(p.show_library, FALSE) AS show_library,
                coalesce(p.show_goals, FALSE) AS show_goals,
                (s.steam_id IS NOT NULL AND s.verified_at IS NOT NULL) AS steam_verified,
                (s.steam_id IS NOT NULL) AS steam_linked
         FROM users u
         LEFT JOIN user_preferences p ON p.user_id = u.id
         LEFT JOIN steam_accounts s ON s.user_id = u.id
         WHERE (u.username_key = $1 OR (u.username_key IS NULL AND lower(u.username) = lower($2)))
           AND u.status = 'active'",
    )
    .bind::<Text, _>(crate::names::key(username))
    .bind::<Text, _>(username)
    .get_result(conn)
    .optional()
}

/// What a leaderboard ranks by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Board {
    Points,
    Perfect,
    Unlocked,
}

impl Board {
    /// From the query string; anything else is points.
    pub fn parse(s: Option<&str>) -> Board {
        match s {
            Some("perfect") => Board::Perfect,
            Some("achievements") => Board::Unlocked,
            _ => Board::Points,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Board::Points => "points",
            Board::Perfect => "perfect",
            Board::Unlocked => "achievements",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Board::Points => "Points",
            Board::Perfect => "Perfect games",
            Board::Unlocked => "Achievements",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Board::Points => "s.points",
            Board::Perfect => "s.perfect",
            Board::Unlocked => "s.unlocked",
        }
    }
}

/// One line of a leaderboard.
#[derive(Debug, Clone, QueryableByName, get_size2::GetSize)]
pub struct Standing {
    #[diesel(sql_type = BigInt)]
    pub rank: i64,
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = Bool)]
    pub profile_public: bool,
    #[diesel(sql_type = BigInt)]
    pub points: i64,
    #[diesel(sql_type = BigInt)]
    pub perfect: i64,
    #[diesel(sql_type = BigInt)]
    pub unlocked: i64,
}

/// The top `limit` of the users who opted in, ranked by `board` (ties
/// share a rank), with `viewer`'s own line when they opted in.
pub fn leaderboard(
    conn: &mut PgConnection,
    board: Board,
    limit: i64,
    viewer: Option<i64>,
) -> QueryResult<(Vec<Standing>, Option<Standing>)> {
    let col = board.column();
    let ranked = format!(
        "WITH ranked AS (
             SELECT rank() OVER (ORDER BY {col} DESC)::int8 AS rank, s.user_id, u.username, p.profile_public,
                    s.points, s.perfect, s.unlocked
             FROM user_preferences p
             JOIN user_scores s ON s.user_id = p.user_id
             JOIN users u ON u.id = p.user_id AND u.status = 'active'
             -- Only SteamIDs their accounts proved: nobody ranks with a
             -- famous hunter's profile they merely typed in.
             JOIN steam_accounts sa ON sa.user_id = p.user_id
                  AND sa.steam_id IS NOT NULL AND sa.verified_at IS NOT NULL
             WHERE p.on_leaderboard
         )"
    );
    let top: Vec<Standing> =
        diesel::sql_query(format!("{ranked} SELECT * FROM ranked ORDER BY rank, lower(username) LIMIT $1"))
            .bind::<BigInt, _>(limit)
            .load(conn)?;
    let own = match viewer {
        Some(id) => diesel::sql_query(format!("{ranked} SELECT * FROM ranked WHERE user_id = $1"))
            .bind::<BigInt, _>(id)
            .get_result(conn)
            .optional()?,
        None => None,
    };
    Ok((top, own))
}

/// Someone due a weekly digest.
#[derive(Debug, Clone, QueryableByName)]
pub struct DigestRecipient {
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = Text)]
    pub email: String,
    #[diesel(sql_type = Text)]
    pub unsubscribe_token: String,
    /// The digest covers the week before the run.
    #[diesel(sql_type = Timestamptz)]
    pub since: DateTime<Utc>,
}

/// Users who asked for the digest, have a confirmed address and were last
/// sent one a week or more before `now`, at most `limit` of them.
pub fn due_digests(conn: &mut PgConnection, now: DateTime<Utc>, limit: i64) -> QueryResult<Vec<DigestRecipient>> {
    diesel::sql_query(
        "SELECT u.id AS user_id, u.username, u.email, p.unsubscribe_token,
                $1 - interval '7 days' AS since
         FROM user_preferences p JOIN users u ON u.id = p.user_id
         WHERE p.weekly_digest AND u.status = 'active' AND u.email IS NOT NULL AND u.email_verified_at IS NOT NULL
           AND (p.digest_sent_at IS NULL OR p.digest_sent_at <= $1 - interval '7 days')
         ORDER BY p.digest_sent_at NULLS FIRST, u.id
         LIMIT $2",
    )
    .bind::<Timestamptz, _>(now)
    .bind::<BigInt, _>(limit)
    .load(conn)
}

/// Records that the user's digest for the week up to `now` was queued.
pub fn mark_digest_sent(conn: &mut PgConnection, user_id: i64, now: DateTime<Utc>) -> QueryResult<()> {
    diesel::update(user_preferences::table.find(user_id))
        .set(user_preferences::digest_sent_at.eq(now))
        .execute(conn)
        .map(|_| ())
}
