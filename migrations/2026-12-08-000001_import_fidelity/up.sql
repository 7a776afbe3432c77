-- 1. Version numbers move once per user per transaction, at a cost that
-- grows with the rows written, not with their square.
--
-- The row-level deferred triggers kept the users already bumped in a
-- string that each row searched (quadratic), and queued one event per row
-- until commit. Now a statement-level trigger notes each statement's users
-- in `version_pending` (one row per user and transaction, set-based), and
-- one deferred event per transaction, on `version_flush`, bumps them all
-- at commit in one ordered statement: still locked last and briefly, and
-- a reader that sees the new number still sees the rows that moved it.
-- Both tables are unlogged: their rows live only until the commit.
DROP TRIGGER library_entries_version ON library_entries;
DROP TRIGGER user_scores_version ON user_scores;
DROP TRIGGER steam_accounts_version ON steam_accounts;
DROP TRIGGER jobs_version ON jobs;
DROP TRIGGER pins_version ON pins;
DROP TRIGGER user_preferences_version ON user_preferences;
DROP TRIGGER custom_achievements_version ON custom_achievements;
DROP TRIGGER community_achievements_version ON community_achievements;
DROP TRIGGER community_achievements_shared ON community_achievements;
DROP TRIGGER user_scores_shared ON user_scores;
DROP TRIGGER user_preferences_shared ON user_preferences;
DROP TRIGGER removed_games_version ON removed_games;
DROP TRIGGER removed_unlocks_version ON removed_unlocks;
DROP TRIGGER users_shared ON users;
DROP TRIGGER steam_accounts_shared ON steam_accounts;
DROP FUNCTION bump_version_of_creator_id();
DROP FUNCTION bump_version_of_owner_id();
DROP FUNCTION bump_version_of_user_id();
DROP FUNCTION bump_user_version(INT8);
DROP FUNCTION bump_shared_version();

CREATE UNLOGGED TABLE version_pending (
    xact    XID8 NOT NULL,
    user_id INT8 NOT NULL,
    PRIMARY KEY (xact, user_id)
);
CREATE UNLOGGED TABLE version_flush (
    xact   XID8 PRIMARY KEY,
    shared BOOL NOT NULL DEFAULT FALSE
);

-- A deleted user's number goes with them (and is never bumped again: the
-- flush skips users that no longer exist). By a trigger, not a foreign
-- key: the flush at commit must never wait on a `users` row.
DELETE FROM user_versions v WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = v.user_id);
CREATE FUNCTION forget_user_versions() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM user_versions v USING old_rows o WHERE v.user_id = o.id;
    RETURN NULL;
END $$;
CREATE TRIGGER users_forget_versions AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION forget_user_versions();

-- Queues the flush of this transaction once (`shared`: the pages of many
-- users move too). The setting is transaction-local and follows savepoint
-- rollbacks, exactly like the row it stands for.
CREATE FUNCTION arm_version_flush(shared BOOL) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    armed TEXT := coalesce(current_setting('questline.version_flush', true), '');
BEGIN
    IF armed = 'shared' OR (armed = 'yes' AND NOT shared) THEN
        RETURN;
    END IF;
    INSERT INTO version_flush (xact, shared) VALUES (pg_current_xact_id(), shared)
    ON CONFLICT (xact) DO UPDATE SET shared = version_flush.shared OR excluded.shared;
    PERFORM set_config('questline.version_flush', CASE WHEN shared THEN 'shared' ELSE 'yes' END, true);
END $$;

-- One function for every watched table: TG_ARGV[0] names the column that
-- holds the user, TG_ARGV[1] = 'shared' when the table's rows also show on
-- pages of many users (a row without a user still moves those).
CREATE FUNCTION note_versions() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    shared BOOL := TG_ARGV[1] = 'shared';
    users TEXT := CASE TG_OP
        WHEN 'INSERT' THEN format('SELECT %I AS u FROM new_rows', TG_ARGV[0])
        WHEN 'DELETE' THEN format('SELECT %I AS u FROM old_rows', TG_ARGV[0])
        ELSE format('SELECT %1$I AS u FROM new_rows UNION SELECT %1$I FROM old_rows', TG_ARGV[0]) END;
    noted INT8;
    any_row BOOL;
BEGIN
    EXECUTE format('INSERT INTO version_pending (xact, user_id)
                    SELECT DISTINCT pg_current_xact_id(), u FROM (%s) s WHERE u IS NOT NULL
                    ON CONFLICT DO NOTHING', users);
    GET DIAGNOSTICS noted = ROW_COUNT;
    IF noted > 0 THEN
        PERFORM arm_version_flush(shared);
    ELSIF shared THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', CASE WHEN TG_OP = 'DELETE' THEN 'old_rows' ELSE 'new_rows' END)
            INTO any_row;
        IF any_row THEN
            PERFORM arm_version_flush(true);
        END IF;
    END IF;
    RETURN NULL;
END $$;

-- At commit: every noted user's number moves by one, in user order (two
-- committing writers take the rows in the same order: no deadlock).
CREATE FUNCTION flush_versions() RETURNS TRIGGER LANGUAGE plpgsql AS $$
DECLARE
    shared BOOL;
BEGIN
    WITH done AS (DELETE FROM version_pending WHERE xact = NEW.xact RETURNING user_id)
    INSERT INTO user_versions (user_id, version)
    SELECT d.user_id, 1 FROM done d
    WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = d.user_id)
    ORDER BY d.user_id
    ON CONFLICT (user_id) DO UPDATE SET version = user_versions.version + 1;
    DELETE FROM version_flush WHERE xact = NEW.xact RETURNING version_flush.shared INTO shared;
    IF shared THEN
        PERFORM nextval('shared_version');
    END IF;
    -- A deferred trigger that writes watched rows after this one queues a
    -- flush of its own.
    PERFORM set_config('questline.version_flush', '', true);
    RETURN NULL;
END $$;

-- A fresh sequence's first nextval() leaves last_value where it was, so
-- the first change to shared pages would go unseen: start it moved.
SELECT nextval('shared_version') FROM shared_version WHERE NOT is_called;

-- A row trigger for the shared pages alone (rare, single-row writes):
-- only queues the flush, at most once per transaction.
CREATE FUNCTION note_shared_change() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM arm_version_flush(true);
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER version_flush_at_commit AFTER INSERT ON version_flush
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION flush_versions();

CREATE TRIGGER library_entries_versions_ins AFTER INSERT ON library_entries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');
CREATE TRIGGER library_entries_versions_upd AFTER UPDATE ON library_entries
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');
CREATE TRIGGER library_entries_versions_del AFTER DELETE ON library_entries
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');

CREATE TRIGGER user_scores_versions_ins AFTER INSERT ON user_scores
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', 'shared');
CREATE TRIGGER user_scores_versions_upd AFTER UPDATE ON user_scores
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', 'shared');
CREATE TRIGGER user_scores_versions_del AFTER DELETE ON user_scores
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', 'shared');

CREATE TRIGGER steam_accounts_versions_ins AFTER INSERT ON steam_accounts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');
CREATE TRIGGER steam_accounts_versions_upd AFTER UPDATE ON steam_accounts
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');
CREATE TRIGGER steam_accounts_versions_del AFTER DELETE ON steam_accounts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');

CREATE TRIGGER jobs_versions_ins AFTER INSERT ON jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');
CREATE TRIGGER jobs_versions_upd AFTER UPDATE ON jobs
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');
CREATE TRIGGER jobs_versions_del AFTER DELETE ON jobs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');

CREATE TRIGGER pins_versions_ins AFTER INSERT ON pins
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');
CREATE TRIGGER pins_versions_upd AFTER UPDATE ON pins
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');
CREATE TRIGGER pins_versions_del AFTER DELETE ON pins
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');

CREATE TRIGGER user_preferences_versions_ins AFTER INSERT ON user_preferences
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', 'shared');
CREATE TRIGGER user_preferences_versions_upd AFTER UPDATE ON user_preferences
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', 'shared');
CREATE TRIGGER user_preferences_versions_del AFTER DELETE ON user_preferences
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', 'shared');

CREATE TRIGGER custom_achievements_versions_ins AFTER INSERT ON custom_achievements
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('owner_id', '');
CREATE TRIGGER custom_achievements_versions_upd AFTER UPDATE ON custom_achievements
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('owner_id', '');
CREATE TRIGGER custom_achievements_versions_del AFTER DELETE ON custom_achievements
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('owner_id', '');

CREATE TRIGGER community_achievements_versions_ins AFTER INSERT ON community_achievements
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('creator_id', 'shared');
CREATE TRIGGER community_achievements_versions_upd AFTER UPDATE ON community_achievements
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('creator_id', 'shared');
CREATE TRIGGER community_achievements_versions_del AFTER DELETE ON community_achievements
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('creator_id', 'shared');

CREATE TRIGGER removed_games_versions_ins AFTER INSERT ON removed_games
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');
CREATE TRIGGER removed_games_versions_upd AFTER UPDATE ON removed_games
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');
CREATE TRIGGER removed_games_versions_del AFTER DELETE ON removed_games
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');

CREATE TRIGGER removed_unlocks_versions_ins AFTER INSERT ON removed_unlocks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');
CREATE TRIGGER removed_unlocks_versions_upd AFTER UPDATE ON removed_unlocks
    REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');
CREATE TRIGGER removed_unlocks_versions_del AFTER DELETE ON removed_unlocks
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION note_versions('user_id', '');

-- A lock, an unlock or a rename moves the leaderboards and the community
-- list; so does a Steam link proven, released or renamed.
CREATE TRIGGER users_shared AFTER UPDATE OF status, username ON users
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.username IS DISTINCT FROM NEW.username)
    EXECUTE FUNCTION note_shared_change();
CREATE TRIGGER steam_accounts_shared
    AFTER INSERT OR DELETE OR UPDATE OF steam_id, verified_at, persona_name, avatar_url ON steam_accounts
    FOR EACH ROW EXECUTE FUNCTION note_shared_change();

-- Deleting users (an import's rollback deletes thousands at once) sets
-- these references to NULL one user at a time: without an index, each
-- user scanned the whole table, and the rollback of 100,000 users never
-- ended.
CREATE INDEX community_achievements_creator_id_idx ON community_achievements (creator_id);
CREATE INDEX community_achievements_hidden_by_idx ON community_achievements (hidden_by) WHERE hidden_by IS NOT NULL;
CREATE INDEX steam_id_conflicts_holder_id_idx ON steam_id_conflicts (holder_id);
CREATE INDEX steam_id_conflicts_claimant_id_idx ON steam_id_conflicts (claimant_id);

-- 2. One rule for names, computed in one place (Rust, `crate::names`):
-- the key is the name's Unicode compatibility caseless form (NFKC and full
-- case folding), whatever the database's locale. It is filled for the
-- rows already here right after this migration (`db::run_migrations`);
-- until then a NULL key falls back to lower() in look-ups.
ALTER TABLE users ADD COLUMN username_key TEXT;
CREATE UNIQUE INDEX users_username_key_key ON users (username_key);
CREATE INDEX users_username_key_missing ON users (id) WHERE username_key IS NULL;
DROP INDEX users_username_lower_key;

-- 3. What an import changed on rows that were here before it, so its
-- rollback can put them back exactly: each row's image before the run and
-- after it (NULL: the row did not exist). A rollback restores `before`
-- only where the row is still exactly `after`; a row changed since is
-- worked out again instead.
CREATE TABLE import_undo (
    run_id INT8 NOT NULL REFERENCES import_runs (id) ON DELETE CASCADE,
    tbl    TEXT NOT NULL,
    key    JSONB NOT NULL,
    before JSONB,
    after  JSONB,
    PRIMARY KEY (run_id, tbl, key)
);

-- 4. Image files an import is writing, recorded (and committed) before
-- each file is written: a run killed before its commit leaves files no
-- row names, which the next import or rollback removes.
CREATE TABLE import_files (
    run_id      INT8 NOT NULL,
    storage_key TEXT NOT NULL,
    PRIMARY KEY (run_id, storage_key)
);
