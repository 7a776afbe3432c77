-- Library entries a run added to an account that existed before it (a file
-- skipped by an earlier run and fixed since) carry the run's id, so
-- rollback removes exactly those.
ALTER TABLE library_entries ADD COLUMN import_run_id BIGINT REFERENCES import_runs (id);
CREATE INDEX library_entries_import_run ON library_entries (import_run_id) WHERE import_run_id IS NOT NULL;

-- What a run changed on games that existed before it (their achievement
-- count grew with the definitions it added), so rollback puts it back.
CREATE TABLE import_game_counts (
    run_id BIGINT NOT NULL REFERENCES import_runs (id) ON DELETE CASCADE,
    appid BIGINT NOT NULL,
    achievement_count INT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, appid)
);

-- An update that sets updated_at itself (a rollback restoring a row) keeps
-- that value; any other change stamps the time as before.
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD AND NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
