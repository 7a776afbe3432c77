ALTER TABLE steam_accounts DROP COLUMN resync_requested_at;
DROP TRIGGER removed_unlocks_version ON removed_unlocks;
DROP TRIGGER removed_games_version ON removed_games;
ALTER TABLE games DROP COLUMN stats_retry_after, DROP COLUMN stats_failures, DROP COLUMN stats_error;
DROP TABLE removed_games;
DROP TABLE removed_unlocks;
ALTER TABLE game_achievements DROP COLUMN removed_at;
ALTER TABLE jobs DROP COLUMN lease_token;
DROP SEQUENCE job_lease_tokens;
