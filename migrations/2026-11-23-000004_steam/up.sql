-- A user's linked Steam account and the job queue that syncs it.

CREATE TABLE steam_accounts (
    user_id          BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    steam_id         BIGINT NOT NULL CHECK (steam_id > 0),
    -- The user's own Web API key, AES-256-GCM under the master key.
    api_key_enc      BYTEA NOT NULL,
    api_key_key_id   TEXT NOT NULL,
    -- Shown on the settings page instead of the key.
    api_key_last4    TEXT NOT NULL,
    persona_name     TEXT,
    avatar_url       TEXT,
    linked_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_synced_at   TIMESTAMPTZ,
    last_sync_error  TEXT
);
CREATE INDEX steam_accounts_last_synced_idx ON steam_accounts (last_synced_at);

-- A PostgreSQL job queue: workers claim with FOR UPDATE SKIP LOCKED, so any
-- number of app instances share it.
CREATE TABLE jobs (
    id             BIGSERIAL PRIMARY KEY,
    kind           TEXT NOT NULL,
    user_id        BIGINT REFERENCES users (id) ON DELETE CASCADE,
    status         TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    run_after      TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A running job whose lease passed is taken over (its worker died).
    locked_until   TIMESTAMPTZ,
    progress_done  INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at     TIMESTAMPTZ,
    finished_at    TIMESTAMPTZ
);
CREATE INDEX jobs_due_idx ON jobs (run_after) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_user_idx ON jobs (user_id, created_at DESC);
-- At most one waiting or running job of a kind per user.
CREATE UNIQUE INDEX jobs_one_active_per_user ON jobs (kind, user_id) WHERE status IN ('queued', 'running');
