//! The outbox: a message is queued as a `send_email` job in the same
//! transaction as the change it reports, so it goes out if and only if that
//! change commits, and survives SMTP outages and restarts.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::jobs::model as jobs;

/// The queue's name for a message to deliver.
pub const SEND_EMAIL: &str = "send_email";

/// A rendered message, as the job's payload carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutgoingEmail {
    pub to: String,
    pub subject: String,
    /// Cleared from the job once sent: links with tokens must not linger.
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub html: Option<String>,
}

/// Queues `email` in the caller's transaction.
pub fn enqueue(conn: &mut PgConnection, email: &OutgoingEmail) -> QueryResult<()> {
    let payload = serde_json::to_value(email).expect("an email serialises to JSON");
    jobs::enqueue_payload(conn, SEND_EMAIL, &payload)
}
