-- Accounts: lockout state, pending email changes, server-side session
-- registry, single-use email tokens, the email outbox and the audit log.

ALTER TABLE users
    ADD COLUMN failed_logins  INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    ADD COLUMN locked_until   TIMESTAMPTZ,
    -- An address waiting for verification; `email` stays in force until then.
    ADD COLUMN pending_email  TEXT CHECK (pending_email = lower(pending_email)),
    ADD COLUMN last_login_at  TIMESTAMPTZ;

-- One row per signed-in browser. Every authenticated request checks its row,
-- so revoking it takes effect on the very next request from that browser.
CREATE TABLE user_sessions (
    id           TEXT PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    remember     BOOLEAN NOT NULL DEFAULT false,
    ip           TEXT,
    user_agent   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The absolute limit, whatever the activity.
    expires_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX user_sessions_user_active_idx ON user_sessions (user_id) WHERE revoked_at IS NULL;

-- Browsers a user has signed in from, to notice a new one.
CREATE TABLE known_devices (
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    fingerprint   TEXT NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, fingerprint)
);

-- Only a SHA-256 of each token is stored: a database leak yields no usable link.
CREATE TABLE email_tokens (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    token_hash  BYTEA NOT NULL UNIQUE,
    -- For verify_email: the address the link proves.
    email       TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX email_tokens_user_purpose_idx ON email_tokens (user_id, purpose);

-- Transactional outbox: a message is written in the same transaction as the
-- change it reports, and a worker delivers it, surviving SMTP outages and
-- restarts.
CREATE TABLE outbox_emails (
    id              BIGSERIAL PRIMARY KEY,
    to_address      TEXT NOT NULL,
    subject         TEXT NOT NULL,
    -- Cleared once sent, so links with tokens do not linger.
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

CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    event_type  TEXT NOT NULL,
    action      TEXT NOT NULL,
    -- No foreign keys: the log outlives the accounts it mentions.
    actor_id    BIGINT,
    target_id   BIGINT,
    target      TEXT,
    success     BOOLEAN NOT NULL,
    error       TEXT,
    details     JSONB NOT NULL DEFAULT '{}'::jsonb,
    ip          TEXT,
    user_agent  TEXT
);
CREATE INDEX audit_log_event_time_idx ON audit_log (event_type, occurred_at);
CREATE INDEX audit_log_actor_time_idx ON audit_log (actor_id, occurred_at);
CREATE INDEX audit_log_success_time_idx ON audit_log (success, occurred_at);
CREATE INDEX audit_log_target_time_idx ON audit_log (target_id, occurred_at);
