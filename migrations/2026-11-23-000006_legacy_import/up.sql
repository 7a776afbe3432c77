-- Every `import-legacy` run, so it can be reported on and rolled back.
CREATE TABLE import_runs (
    id BIGSERIAL PRIMARY KEY,
    source TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    report JSONB,
    rolled_back_at TIMESTAMPTZ
);

-- Rows a run added carry its id; rollback deletes exactly those (their
-- library, unlocks, images and achievements follow by cascade).
ALTER TABLE users ADD COLUMN legacy_username TEXT, ADD COLUMN import_run_id BIGINT REFERENCES import_runs (id);
CREATE UNIQUE INDEX users_legacy_username_key ON users (legacy_username) WHERE legacy_username IS NOT NULL;
CREATE INDEX users_import_run ON users (import_run_id) WHERE import_run_id IS NOT NULL;

ALTER TABLE games ADD COLUMN import_run_id BIGINT REFERENCES import_runs (id);
ALTER TABLE game_achievements ADD COLUMN import_run_id BIGINT REFERENCES import_runs (id);
CREATE INDEX games_import_run ON games (import_run_id) WHERE import_run_id IS NOT NULL;
CREATE INDEX game_achievements_import_run ON game_achievements (import_run_id) WHERE import_run_id IS NOT NULL;

ALTER TABLE custom_achievements ADD COLUMN legacy_id TEXT, ADD COLUMN import_run_id BIGINT REFERENCES import_runs (id);
CREATE UNIQUE INDEX custom_achievements_legacy_id ON custom_achievements (owner_id, legacy_id) WHERE legacy_id IS NOT NULL;

ALTER TABLE community_achievements ADD COLUMN legacy_id TEXT, ADD COLUMN import_run_id BIGINT REFERENCES import_runs (id);
CREATE UNIQUE INDEX community_achievements_legacy_id ON community_achievements (legacy_id) WHERE legacy_id IS NOT NULL;
CREATE INDEX community_achievements_import_run ON community_achievements (import_run_id) WHERE import_run_id IS NOT NULL;
