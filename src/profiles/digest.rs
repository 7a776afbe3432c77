//! The weekly digest: for users who turned it on, once a week, what the
//! week brought (unlocks and the rarest of them, goals met, games
//! perfected). A quiet week sends nothing. Runs as a scheduled task on the
//! elected node; each mail is queued in the same transaction that records
//! it as sent, so a crash never sends one twice.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::model;
use crate::email::messages::WeeklyDigest;
use crate::models::history;
use crate::settings::Settings;

/// Digests queued per run at most; the rest wait for the next run.
const PER_RUN: i64 = 500;

/// Queues the digests due at `now`; returns how many were queued.
pub fn queue_due(conn: &mut PgConnection, settings: &Settings, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let mut queued = 0;
    for r in model::due_digests(conn, now, PER_RUN)? {
        conn.transaction(|conn| -> anyhow::Result<()> {
            let (unlocked, rarest) = history::unlocks_since(conn, r.user_id, r.since, 5)?;
            let goals = crate::achievements::model::met_since(conn, r.user_id, r.since)?;
            let perfected: Vec<String> =
                history::perfected_since(conn, r.user_id, r.since)?.into_iter().map(|g| g.name).collect();
            model::mark_digest_sent(conn, r.user_id, now)?;
            if unlocked == 0 && goals.is_empty() && perfected.is_empty() {
                return Ok(());
            }
            let highlights = rarest
                .iter()
                .map(|u| match u.global_percent {
                    Some(p) => format!("{} in {} ({p:.1}% of players)", u.achievement, u.game),
                    None => format!("{} in {}", u.achievement, u.game),
                })
                .collect();
            let base = settings.public_base_url.as_str().trim_end_matches('/');
            WeeklyDigest {
                username: r.username.clone(),
                unlocked,
                highlights,
                goals,
                perfected,
                stats_link: format!("{base}/stats"),
                unsubscribe_link: format!("{base}/unsubscribe/{}", r.unsubscribe_token),
            }
            .queue(conn, &r.email)?;
            queued += 1;
            Ok(())
        })?;
    }
    Ok(queued)
}
