ALTER TABLE community_achievements DROP COLUMN legacy_id, DROP COLUMN import_run_id;
ALTER TABLE custom_achievements DROP COLUMN legacy_id, DROP COLUMN import_run_id;
ALTER TABLE game_achievements DROP COLUMN import_run_id;
ALTER TABLE games DROP COLUMN import_run_id;
ALTER TABLE users DROP COLUMN legacy_username, DROP COLUMN import_run_id;
DROP TABLE import_runs;
