-- A number per user that moves whenever something their pages show
-- changes: pages keep what they computed under it (src/views.rs) and read
-- only this number, with the session, on a request.
--
-- The triggers are deferred to commit, so the version row is locked last
-- and briefly: a transaction holding it never waits for anything else,
-- and two writers of one user cannot deadlock through it. A reader that
-- sees the new number also sees the rows that moved it.
CREATE TABLE user_versions (
    -- No foreign key: a deleted user's row is harmless (ids are never
    -- reused), and a cascade deleting the user fires these triggers too.
    user_id INT8 PRIMARY KEY,
    version INT8 NOT NULL DEFAULT 0
);

-- Pages that show many users at once (leaderboards, the community list)
-- are kept under this number, which every committed change to shared
-- goals, totals or profile settings moves. A sequence, so writers never
-- wait on each other for it; it moves at commit (deferred triggers), so a
-- reader can take the new number before the rows only in the instant
-- before a commit lands, and then keeps stale data at most a minute.
CREATE SEQUENCE shared_version;
-- PL/pgSQL keeps the plan of its statement for the session; a SQL function
-- would parse its body again on every request's session check.
CREATE FUNCTION shared_version() RETURNS INT8 LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT last_value FROM shared_version);
END $$;

CREATE FUNCTION bump_shared_version() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('questline.bumped_shared', true), '') = '' THEN
        PERFORM set_config('questline.bumped_shared', 'yes', true);
        PERFORM nextval('shared_version');
    END IF;
    RETURN NULL;
END $$;

-- Everything cached is also bounded by a cache epoch the admin can move
-- ("clear cached pages"), on every node at once.
ALTER TABLE instance_settings ADD COLUMN cache_epoch INT8 NOT NULL DEFAULT 0;

CREATE FUNCTION bump_user_version(uid INT8) RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    done TEXT := coalesce(current_setting('questline.bumped_versions', true), '');
BEGIN
    IF uid IS NULL OR position(',' || uid || ',' IN done) > 0 THEN
        RETURN;
    END IF;
    -- Once per user per transaction, however many rows it wrote.
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

-- Unlocks (user_achievements) are not watched: every write of them also
-- writes the game's library entry (its counts and points).
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
