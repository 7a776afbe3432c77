//! `steam_id_conflicts`: attempts to take a SteamID another account holds,
//! kept for the admin page.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};

use crate::schema::steam_id_conflicts;

/// Records one attempt: `refused` (the holder had proven it) or `released`
/// (an unproven holder lost it to the claimant).
pub fn record(
    conn: &mut PgConnection,
    steam_id: u64,
    holder: Option<i64>,
    claimant: Option<i64>,
    outcome: &str,
) -> QueryResult<()> {
    diesel::insert_into(steam_id_conflicts::table)
        .values((
            steam_id_conflicts::steam_id.eq(steam_id as i64),
            steam_id_conflicts::holder_id.eq(holder),
            steam_id_conflicts::claimant_id.eq(claimant),
            steam_id_conflicts::outcome.eq(outcome),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Whether `claimant` (or, for `None`, a sign-up that left no account) was
/// refused `steam_id` in the last hour: repeated attempts make one line
/// and one mail an hour, however often they come.
pub fn refused_lately(conn: &mut PgConnection, steam_id: u64, claimant: Option<i64>) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        found: bool,
    }
    diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM steam_id_conflicts
                        WHERE steam_id = $1 AND outcome = 'refused' AND claimant_id IS NOT DISTINCT FROM $2
                          AND created_at > now() - interval '1 hour') AS found",
    )
    .bind::<BigInt, _>(steam_id as i64)
    .bind::<Nullable<BigInt>, _>(claimant)
    .get_result::<Found>(conn)
    .map(|r| r.found)
}

/// One line of the admin page.
#[derive(Debug, Clone, QueryableByName)]
pub struct Conflict {
    #[diesel(sql_type = BigInt)]
    pub steam_id: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub holder_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub holder: Option<String>,
    /// The holder's current SteamID, to tell whether they still hold it.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub holder_steam_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub claimant_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub claimant: Option<String>,
    #[diesel(sql_type = Text)]
    pub outcome: String,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

/// The latest `limit` conflicts after skipping `offset`, and how many there are.
pub fn page(conn: &mut PgConnection, limit: i64, offset: i64) -> QueryResult<(Vec<Conflict>, i64)> {
    let total = steam_id_conflicts::table.count().get_result(conn)?;
    let rows = diesel::sql_query(
        "SELECT c.steam_id, c.holder_id, h.username AS holder, hs.steam_id AS holder_steam_id,
                c.claimant_id, cl.username AS claimant, c.outcome, c.created_at
         FROM steam_id_conflicts c
         LEFT JOIN users h ON h.id = c.holder_id
         LEFT JOIN steam_accounts hs ON hs.user_id = c.holder_id
         LEFT JOIN users cl ON cl.id = c.claimant_id
         ORDER BY c.created_at DESC, c.id DESC LIMIT $1 OFFSET $2",
    )
    .bind::<BigInt, _>(limit)
    .bind::<BigInt, _>(offset)
    .load(conn)?;
    Ok((rows, total))
}
