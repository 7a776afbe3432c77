//! Delivers the outbox. Runs inside `serve`; any number of instances can run
//! it at once, since claims skip rows another worker holds.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::outbox::{self, OutboxEmail};
use super::{build_message, Mailer};
use crate::db::{blocking, PgPool};

/// How often the queue is checked when nothing wakes the worker: messages
/// queued by another instance, and retries falling due.
const POLL_INTERVAL: Duration = Duration::from_secs(5);
const BATCH: i64 = 20;

/// Wakes the worker of this instance right after a message is queued.
#[derive(Clone, Default)]
pub struct OutboxSignal(pub Arc<Notify>);

impl OutboxSignal {
    pub fn notify(&self) {
        self.0.notify_one();
    }
}

/// Runs until the runtime stops.
pub async fn run(pool: PgPool, mailer: Mailer, from: String, signal: OutboxSignal) {
    let mut outage = crate::db::OutageLog::new("email worker");
    loop {
        let claimed = match blocking(&pool, |conn| outbox::claim_due(conn, BATCH)).await {
            Ok(rows) => {
                outage.succeeded();
                rows
            }
            Err(e) => {
                tokio::time::sleep(outage.failed(&e)).await;
                continue;
            }
        };
        let full = claimed.len() as i64 == BATCH;
        for email in claimed {
            deliver(&pool, &mailer, &from, email).await;
        }
        if !full {
            tokio::select! {
                _ = signal.0.notified() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    }
}

async fn deliver(pool: &PgPool, mailer: &Mailer, from: &str, email: OutboxEmail) {
    let message = build_message(
        from,
        &email.to_address,
        &email.subject,
        email.body_text.clone().unwrap_or_default(),
        email.body_html.clone().unwrap_or_default(),
    );
    let result = match message {
        Ok(m) => mailer.send(m).await,
        Err(e) => Err(e),
    };
    let id = email.id;
    let outcome = match result {
        Ok(()) => {
            tracing::info!(email_id = id, "email sent");
            blocking(pool, move |conn| outbox::mark_sent(conn, id)).await
        }
        Err(error) => {
            tracing::warn!(email_id = id, attempts = email.attempts, %error, "email delivery failed");
            blocking(pool, move |conn| outbox::mark_failed(conn, &email, &error)).await
        }
    };
    if let Err(e) = outcome {
        tracing::error!(email_id = id, error = %e, "cannot record the delivery outcome");
    }
}
