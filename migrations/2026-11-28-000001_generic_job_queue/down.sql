CREATE TABLE outbox_emails (
    id              BIGSERIAL PRIMARY KEY,
    to_address      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body_text       TEXT,
    body_html       TEXT,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at         TIMESTAMPTZ
);
CREATE INDEX outbox_emails_due_idx ON outbox_emails (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_emails_status_idx ON outbox_emails (status, created_at);

INSERT INTO outbox_emails (to_address, subject, body_text, body_html, status, attempts, next_attempt_at,
                           last_error, created_at, sent_at)
SELECT payload->>'to', payload->>'subject', payload->>'text', payload->>'html',
       CASE status WHEN 'queued' THEN 'pending' WHEN 'running' THEN 'pending' WHEN 'done' THEN 'sent' ELSE 'failed' END,
       attempts, run_after, last_error, created_at, CASE WHEN status = 'done' THEN finished_at END
FROM jobs WHERE kind = 'send_email';
DELETE FROM jobs WHERE kind = 'send_email';

DROP INDEX jobs_due_idx;
CREATE INDEX jobs_due_idx ON jobs (run_after) WHERE status IN ('queued', 'running');
ALTER TABLE jobs DROP COLUMN payload;
