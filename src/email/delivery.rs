//! The `send_email` job kind: delivers one queued message.

use super::outbox::{OutgoingEmail, SEND_EMAIL};
use super::{build_message, Mailer};
use crate::jobs::kind::{Backoff, Done, JobError, JobFuture, JobKind};
use crate::jobs::model::Job;
use crate::state::AppState;

/// Sends queued mail through the configured transport.
pub struct SendEmail {
    mailer: Mailer,
    from: String,
}

impl SendEmail {
    /// Delivers with `mailer`, from the address `from`.
    pub fn new(mailer: Mailer, from: String) -> Self {
        SendEmail { mailer, from }
    }
}

impl JobKind for SendEmail {
    fn name(&self) -> &'static str {
        SEND_EMAIL
    }

    /// A minute after the first failure, doubling up to an hour, for about
    /// a day in all: long enough to outlast an SMTP outage.
    fn backoff(&self) -> Backoff {
        Backoff { base_secs: 60, max_secs: 3600, max_attempts: 10 }
    }

    fn keeps_payload(&self) -> bool {
        false
    }

    fn run<'a>(&'a self, _state: &'a AppState, job: &'a Job) -> JobFuture<'a> {
        Box::pin(async move {
            let email: OutgoingEmail = serde_json::from_value(job.payload.clone())
                .map_err(|e| JobError::fatal(format!("unreadable email payload: {e}")))?;
            let message = build_message(
                &self.from,
                &email.to,
                &email.subject,
                email.text.unwrap_or_default(),
                email.html.unwrap_or_default(),
            )
            .map_err(JobError::fatal)?;
            self.mailer.send(message).await.map_err(JobError::transient)?;
            tracing::info!(job_id = job.id, "email sent");
            Ok(Done::default())
        })
    }
}
