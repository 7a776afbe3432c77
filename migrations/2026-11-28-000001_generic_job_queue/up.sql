-- One queue for every kind of background work: a job carries its kind's
-- data in `payload`, and the email outbox becomes jobs of kind
-- `send_email` (same claim, lease and backoff as a Steam sync).
ALTER TABLE jobs ADD COLUMN payload JSONB NOT NULL DEFAULT '{}'::jsonb;

-- Due jobs are claimed per kind, so a long sync never holds up a mail.
DROP INDEX jobs_due_idx;
CREATE INDEX jobs_due_idx ON jobs (kind, run_after) WHERE status IN ('queued', 'running');

INSERT INTO jobs (kind, status, attempts, run_after, last_error, created_at, started_at, finished_at, payload)
SELECT 'send_email',
       CASE status WHEN 'pending' THEN 'queued' WHEN 'sent' THEN 'done' ELSE 'failed' END,
       attempts, next_attempt_at, last_error, created_at, NULL,
       CASE WHEN status = 'pending' THEN NULL ELSE coalesce(sent_at, next_attempt_at) END,
       jsonb_build_object('to', to_address, 'subject', subject, 'text', body_text, 'html', body_html)
FROM outbox_emails;

DROP TABLE outbox_emails;
