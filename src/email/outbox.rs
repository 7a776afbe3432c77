//! The outbox table: enqueue inside the caller's transaction, claim with a
//! lease so several workers share the queue, record the outcome.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::schema::outbox_emails;

/// Attempts before a message is given up as failed (about a day of backoff).
pub const MAX_ATTEMPTS: i32 = 10;

/// A rendered message, ready to queue.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A queued message as the worker claims it.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = outbox_emails, check_for_backend(diesel::pg::Pg))]
pub struct OutboxEmail {
    pub id: i64,
    pub to_address: String,
    pub subject: String,
    pub body_text: Option<String>,
    pub body_html: Option<String>,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// Queues `email`; call inside the transaction that makes the change it reports.
pub fn enqueue(conn: &mut PgConnection, email: &OutgoingEmail) -> QueryResult<()> {
    diesel::insert_into(outbox_emails::table)
        .values((
            outbox_emails::to_address.eq(&email.to),
            outbox_emails::subject.eq(&email.subject),
            outbox_emails::body_text.eq(&email.text),
            outbox_emails::body_html.eq(&email.html),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Claims up to `limit` due messages. The claim pushes `next_attempt_at` a
/// few minutes out instead of holding a lock while SMTP talks, so a worker
/// that dies mid-send only delays its messages, it never loses them.
pub fn claim_due(conn: &mut PgConnection, limit: i64) -> QueryResult<Vec<OutboxEmail>> {
    diesel::sql_query(
        "UPDATE outbox_emails SET attempts = attempts + 1, next_attempt_at = now() + interval '5 minutes'
         WHERE id IN (
             SELECT id FROM outbox_emails
             WHERE status = 'pending' AND next_attempt_at <= now()
             ORDER BY next_attempt_at
             LIMIT $1
             FOR UPDATE SKIP LOCKED)
         RETURNING *",
    )
    .bind::<BigInt, _>(limit)
    .load(conn)
}

pub fn mark_sent(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
    diesel::update(outbox_emails::table.find(id))
        .set((
            outbox_emails::status.eq("sent"),
            outbox_emails::sent_at.eq(diesel::dsl::now),
            outbox_emails::body_text.eq(None::<String>),
            outbox_emails::body_html.eq(None::<String>),
            outbox_emails::last_error.eq(None::<String>),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Schedules a retry with exponential backoff (30 s doubling, capped at an
/// hour), or gives up after [`MAX_ATTEMPTS`].
pub fn mark_failed(conn: &mut PgConnection, email: &OutboxEmail, error: &str) -> QueryResult<()> {
    let give_up = email.attempts >= MAX_ATTEMPTS;
    let delay_secs = (30_i64 << email.attempts.clamp(0, 7)).min(3600);
    diesel::sql_query(
        "UPDATE outbox_emails SET last_error = $2, status = $3,
             next_attempt_at = now() + make_interval(secs => $4)
         WHERE id = $1",
    )
    .bind::<BigInt, _>(email.id)
    .bind::<Text, _>(error.chars().take(1000).collect::<String>())
    .bind::<Text, _>(if give_up { "failed" } else { "pending" })
    .bind::<diesel::sql_types::Double, _>(delay_secs as f64)
    .execute(conn)
    .map(|_| ())
}
