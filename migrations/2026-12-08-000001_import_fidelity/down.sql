DROP INDEX steam_id_conflicts_claimant_id_idx;
DROP INDEX steam_id_conflicts_holder_id_idx;
DROP INDEX community_achievements_hidden_by_idx;
DROP INDEX community_achievements_creator_id_idx;
DROP TABLE import_files;
DROP TABLE import_undo;
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
DROP INDEX users_username_key_missing;
DROP INDEX users_username_key_key;
ALTER TABLE users DROP COLUMN username_key;

DROP TRIGGER community_achievements_versions_del ON community_achievements;
DROP TRIGGER community_achievements_versions_upd ON community_achievements;
DROP TRIGGER community_achievements_versions_ins ON community_achievements;
DROP TRIGGER custom_achievements_versions_del ON custom_achievements;
DROP TRIGGER custom_achievements_versions_upd ON custom_achievements;
DROP TRIGGER custom_achievements_versions_ins ON custom_achievements;
DROP TRIGGER user_preferences_versions_del ON user_preferences;
DROP TRIGGER user_preferences_versions_upd ON user_preferences;
DROP TRIGGER user_preferences_versions_ins ON user_preferences;
DROP TRIGGER pins_versions_del ON pins;
DROP TRIGGER pins_versions_upd ON pins;
DROP TRIGGER pins_versions_ins ON pins;
DROP TRIGGER jobs_versions_del ON jobs;
DROP TRIGGER jobs_versions_upd ON jobs;
DROP TRIGGER jobs_versions_ins ON jobs;
DROP TRIGGER steam_accounts_versions_del ON steam_accounts;
DROP TRIGGER steam_accounts_versions_upd ON steam_accounts;
DROP TRIGGER steam_accounts_versions_ins ON steam_accounts;
DROP TRIGGER user_scores_versions_del ON user_scores;
DROP TRIGGER user_scores_versions_upd ON user_scores;
DROP TRIGGER user_scores_versions_ins ON user_scores;
DROP TRIGGER library_entries_versions_del ON library_entries;
DROP TRIGGER library_entries_versions_upd ON library_entries;
DROP TRIGGER library_entries_versions_ins ON library_entries;
DROP TRIGGER steam_accounts_shared ON steam_accounts;
DROP TRIGGER users_shared ON users;
DROP TRIGGER removed_unlocks_versions_del ON removed_unlocks;
DROP TRIGGER removed_unlocks_versions_upd ON removed_unlocks;
DROP TRIGGER removed_unlocks_versions_ins ON removed_unlocks;
DROP TRIGGER removed_games_versions_del ON removed_games;
DROP TRIGGER removed_games_versions_upd ON removed_games;
DROP TRIGGER removed_games_versions_ins ON removed_games;
DROP FUNCTION note_shared_change();
DROP TRIGGER version_flush_at_commit ON version_flush;
DROP FUNCTION flush_versions();
DROP FUNCTION note_versions();
DROP FUNCTION arm_version_flush(BOOL);
DROP TRIGGER users_forget_versions ON users;
DROP FUNCTION forget_user_versions();
DROP TABLE version_flush;
DROP TABLE version_pending;

CREATE FUNCTION bump_shared_version() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('questline.bumped_shared', true), '') = '' THEN
        PERFORM set_config('questline.bumped_shared', 'yes', true);
        PERFORM nextval('shared_version');
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION bump_user_version(uid INT8) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    done TEXT := coalesce(current_setting('questline.bumped_versions', true), '');
BEGIN
    IF uid IS NULL OR position(',' || uid || ',' IN done) > 0 THEN
        RETURN;
    END IF;
    PERFORM set_config('questline.bumped_versions', done || ',' || uid || ',', true);
    INSERT INTO user_versions (user_id, version) VALUES (uid, 1)
    ON CONFLICT (user_id) DO UPDATE SET version = user_versions.version + 1;
END $$;
CREATE FUNCTION bump_version_of_user_id() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN PERFORM bump_user_version(OLD.user_id); END IF;
    IF TG_OP <> 'DELETE' THEN PERFORM bump_user_version(NEW.user_id); END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION bump_version_of_owner_id() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN PERFORM bump_user_version(OLD.owner_id); END IF;
    IF TG_OP <> 'DELETE' THEN PERFORM bump_user_version(NEW.owner_id); END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION bump_version_of_creator_id() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN PERFORM bump_user_version(OLD.creator_id); END IF;
    IF TG_OP <> 'DELETE' THEN PERFORM bump_user_version(NEW.creator_id); END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER library_entries_version AFTER INSERT OR UPDATE OR DELETE ON library_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_version_of_user_id();
CREATE CONSTRAINT TRIGGER user_scores_version AFTER INSERT OR UPDATE OR DELETE ON user_scores
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_version_of_user_id();
CREATE CONSTRAINT TRIGGER steam_accounts_version AFTER INSERT OR UPDATE OR DELETE ON steam_accounts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_version_of_user_id();
CREATE CONSTRAINT TRIGGER jobs_version AFTER INSERT OR UPDATE OR DELETE ON jobs
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_version_of_user_id();
CREATE CONSTRAINT TRIGGER pins_version AFTER INSERT OR UPDATE OR DELETE ON pins
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_version_of_user_id();
CREATE CONSTRAINT TRIGGER user_preferences_version AFTER INSERT OR UPDATE OR DELETE ON user_preferences
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_version_of_user_id();
CREATE CONSTRAINT TRIGGER custom_achievements_version AFTER INSERT OR UPDATE OR DELETE ON custom_achievements
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_version_of_owner_id();
CREATE CONSTRAINT TRIGGER community_achievements_version AFTER INSERT OR UPDATE OR DELETE ON community_achievements
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_version_of_creator_id();
CREATE CONSTRAINT TRIGGER community_achievements_shared AFTER INSERT OR UPDATE OR DELETE ON community_achievements
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_shared_version();
CREATE CONSTRAINT TRIGGER user_scores_shared AFTER INSERT OR UPDATE OR DELETE ON user_scores
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_shared_version();
CREATE CONSTRAINT TRIGGER user_preferences_shared AFTER INSERT OR UPDATE OR DELETE ON user_preferences
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_shared_version();
CREATE CONSTRAINT TRIGGER removed_games_version AFTER INSERT OR UPDATE OR DELETE ON removed_games
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_version_of_user_id();
CREATE CONSTRAINT TRIGGER removed_unlocks_version AFTER INSERT OR UPDATE OR DELETE ON removed_unlocks
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_version_of_user_id();
CREATE CONSTRAINT TRIGGER users_shared AFTER UPDATE OF status, username ON users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.username IS DISTINCT FROM NEW.username)
    EXECUTE FUNCTION bump_shared_version();
CREATE CONSTRAINT TRIGGER steam_accounts_shared
    AFTER INSERT OR DELETE OR UPDATE OF steam_id, verified_at, persona_name, avatar_url ON steam_accounts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_shared_version();
