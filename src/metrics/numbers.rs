//! The instance's numbers at a glance: accounts and queues, for the admin
//! dashboard and the metrics endpoint.

use diesel::prelude::*;

use crate::email::outbox::SEND_EMAIL;
use crate::jobs::model as jobs;
use crate::jobs::STEAM_SYNC;
use crate::models::user::{AccountCounts, User};

/// The numbers on the dashboard.
#[derive(Debug)]
pub struct Numbers {
    pub users: i64,
    pub new_this_week: i64,
    pub unverified: i64,
    pub locked: i64,
    pub jobs_waiting: i64,
    pub jobs_running: i64,
    pub jobs_failed: i64,
    pub mail_pending: i64,
    pub mail_failed: i64,
}

impl Numbers {
    /// Reads them all.
    pub fn load(conn: &mut PgConnection) -> QueryResult<Numbers> {
        let AccountCounts { users, new_this_week, unverified, locked } = User::counts(conn)?;
        let sync = jobs::counts(conn, STEAM_SYNC)?;
        let mail = jobs::counts(conn, SEND_EMAIL)?;
        Ok(Numbers {
            users,
            new_this_week,
            unverified,
            locked,
            jobs_waiting: sync.waiting,
            jobs_running: sync.running,
            jobs_failed: sync.failed,
            // Waiting for their first try or for the next after a failure.
            mail_pending: mail.waiting + mail.running,
            mail_failed: mail.failed,
        })
    }
}
