-- A run of a job owns it only while its lease token is the job's: a claim
-- draws a new token, so a worker whose lease was taken over (or whose sync
-- a relink superseded) finds every later write refused.
CREATE SEQUENCE job_lease_tokens;
ALTER TABLE jobs ADD COLUMN lease_token INT8;

-- The removal policy (README "What Steam removed"). An achievement gone
-- from its game's schema is kept, marked removed, for history; games count
-- only the others.
ALTER TABLE game_achievements ADD COLUMN removed_at TIMESTAMPTZ;

-- Unlocks that no longer count: of an achievement removed from its game,
-- or of a game that left the owned list. Kept exactly, so a game that
-- comes back (or an achievement Steam lists again) gets them back.
CREATE TABLE removed_unlocks (
    user_id INT8 NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    achievement_id INT8 NOT NULL REFERENCES game_achievements (id) ON DELETE CASCADE,
    unlocked_at TIMESTAMPTZ,
    removed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, achievement_id)
);
CREATE INDEX removed_unlocks_achievement ON removed_unlocks (achievement_id);

-- Games that left the user's owned list (a family share ended, a refund,
-- a delisting): shown as "no longer in your library", counted nowhere,
-- and restored with their unlocks if Steam lists them again.
CREATE TABLE removed_games (
    user_id INT8 NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    appid INT8 NOT NULL REFERENCES games (appid) ON DELETE CASCADE,
    playtime_minutes INT4 NOT NULL DEFAULT 0,
    last_played_at TIMESTAMPTZ,
    import_run_id INT8,
    removed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, appid)
);

-- A game's schema and global percentages have their own failure state: a
-- bad answer is recorded here and tried again after a backoff, instead of
-- being kept silently for a week.
ALTER TABLE games
    ADD COLUMN stats_error TEXT,
    ADD COLUMN stats_failures INT4 NOT NULL DEFAULT 0,
    ADD COLUMN stats_retry_after TIMESTAMPTZ;

CREATE CONSTRAINT TRIGGER removed_games_version AFTER INSERT OR UPDATE OR DELETE ON removed_games
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_version_of_user_id();
CREATE CONSTRAINT TRIGGER removed_unlocks_version AFTER INSERT OR UPDATE OR DELETE ON removed_unlocks
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_version_of_user_id();

-- "Resync everything" asks for every game's schema and percentages as of
-- now: data fetched before this counts as stale for this user's syncs,
-- games bought since the click included.
ALTER TABLE steam_accounts ADD COLUMN resync_requested_at TIMESTAMPTZ;
