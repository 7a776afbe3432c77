//! The instance's numbers at a glance: accounts and queues.

use diesel::prelude::*;
use diesel::sql_types::BigInt;

/// The numbers on the dashboard, from one query.
#[derive(Debug, QueryableByName)]
pub struct Numbers {
    #[diesel(sql_type = BigInt)]
    pub users: i64,
    #[diesel(sql_type = BigInt)]
    pub new_this_week: i64,
    #[diesel(sql_type = BigInt)]
    pub unverified: i64,
    #[diesel(sql_type = BigInt)]
    pub locked: i64,
    #[diesel(sql_type = BigInt)]
    pub jobs_waiting: i64,
    #[diesel(sql_type = BigInt)]
    pub jobs_running: i64,
    #[diesel(sql_type = BigInt)]
    pub jobs_failed: i64,
    #[diesel(sql_type = BigInt)]
    pub mail_pending: i64,
    #[diesel(sql_type = BigInt)]
    pub mail_failed: i64,
}

impl Numbers {
    pub fn load(conn: &mut PgConnection) -> QueryResult<Numbers> {
        diesel::sql_query(
            "SELECT
               (SELECT count(*) FROM users) AS users,
               (SELECT count(*) FROM users WHERE created_at > now() - interval '7 days') AS new_this_week,
               (SELECT count(*) FROM users WHERE email_verified_at IS NULL) AS unverified,
               (SELECT count(*) FROM users WHERE status = 'locked' OR locked_until > now()) AS locked,
               (SELECT count(*) FROM jobs WHERE status = 'queued') AS jobs_waiting,
               (SELECT count(*) FROM jobs WHERE status = 'running') AS jobs_running,
               (SELECT count(*) FROM jobs WHERE status = 'failed') AS jobs_failed,
               (SELECT count(*) FROM outbox_emails WHERE status = 'pending') AS mail_pending,
               (SELECT count(*) FROM outbox_emails WHERE status = 'failed') AS mail_failed",
        )
        .get_result(conn)
    }
}
