CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TABLE import_game_counts;
DROP INDEX library_entries_import_run;
ALTER TABLE library_entries DROP COLUMN import_run_id;
