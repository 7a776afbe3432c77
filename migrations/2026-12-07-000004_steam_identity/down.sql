DROP TRIGGER steam_accounts_shared ON steam_accounts;
DROP TABLE instance_secrets;
DROP INDEX steam_accounts_steam_id_unique;
DROP TABLE steam_id_conflicts;
ALTER TABLE steam_accounts DROP COLUMN verified_at;
