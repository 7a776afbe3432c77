-- Core schema: accounts, the shared per-game catalogue, and per-user progress.
--
-- Achievement names and descriptions live once per game (game_achievements);
-- a user's progress only points at them, so 10,000 users owning the same game
-- cost one copy of its schema.

CREATE FUNCTION set_updated_at() RETURNS trigger AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TABLE users (
    id                BIGSERIAL PRIMARY KEY,
    -- Registration enforces 3-32 characters; the wider bound leaves room for
    -- renamed legacy accounts ("NAME-2") without another migration.
    username          TEXT NOT NULL CHECK (char_length(username) BETWEEN 1 AND 64),
    -- Stored lower-case so uniqueness and look-ups need no function index.
    email             TEXT CHECK (email = lower(email) AND char_length(email) <= 254),
    email_verified_at TIMESTAMPTZ,
    -- NULL means no usable password (for example an unknown legacy hash):
    -- logging in is impossible until a reset.
    password_hash     TEXT,
    role              TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    status            TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'locked', 'disabled')),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (email) WHERE email IS NOT NULL;
CREATE INDEX users_created_at_idx ON users (created_at);
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE games (
    appid                         BIGINT PRIMARY KEY CHECK (appid > 0),
    name                          TEXT NOT NULL,
    icon_hash                     TEXT,
    -- Kept in step with game_achievements by whoever writes the schema, so the
    -- library page can show "unlocked / total" without aggregating 50,000 rows.
    achievement_count             INTEGER NOT NULL DEFAULT 0 CHECK (achievement_count >= 0),
    schema_fetched_at             TIMESTAMPTZ,
    global_percentages_fetched_at TIMESTAMPTZ,
    created_at                    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX games_name_lower_idx ON games (lower(name));
CREATE TRIGGER games_set_updated_at BEFORE UPDATE ON games
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE game_achievements (
    id             BIGSERIAL PRIMARY KEY,
    appid          BIGINT NOT NULL REFERENCES games (appid) ON DELETE CASCADE,
    api_name       TEXT NOT NULL,
    display_name   TEXT NOT NULL,
    -- Steam omits descriptions of hidden achievements.
    description    TEXT,
    hidden         BOOLEAN NOT NULL DEFAULT false,
    icon_url       TEXT,
    icon_gray_url  TEXT,
    global_percent DOUBLE PRECISION CHECK (global_percent BETWEEN 0 AND 100),
    CONSTRAINT game_achievements_appid_api_name_key UNIQUE (appid, api_name)
);

CREATE TABLE library_entries (
    user_id                 BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    appid                   BIGINT NOT NULL REFERENCES games (appid),
    playtime_minutes        INTEGER NOT NULL DEFAULT 0 CHECK (playtime_minutes >= 0),
    playtime_2weeks_minutes INTEGER NOT NULL DEFAULT 0 CHECK (playtime_2weeks_minutes >= 0),
    last_played_at          TIMESTAMPTZ,
    -- Derived from user_achievements and written in the same transaction as
    -- the unlocks, so list pages sort and filter on plain columns.
    unlocked_count          INTEGER NOT NULL DEFAULT 0 CHECK (unlocked_count >= 0),
    last_unlock_at          TIMESTAMPTZ,
    achievements_synced_at  TIMESTAMPTZ,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, appid)
);
CREATE INDEX library_entries_appid_idx ON library_entries (appid);
CREATE INDEX library_entries_user_playtime_idx ON library_entries (user_id, playtime_minutes DESC);
CREATE INDEX library_entries_user_last_unlock_idx ON library_entries (user_id, last_unlock_at DESC NULLS LAST);
CREATE TRIGGER library_entries_set_updated_at BEFORE UPDATE ON library_entries
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Only unlocked achievements have a row: "locked" is the absence of one.
CREATE TABLE user_achievements (
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    achievement_id BIGINT NOT NULL REFERENCES game_achievements (id) ON DELETE CASCADE,
    -- NULL when the source knew the achievement was unlocked but not when.
    unlocked_at    TIMESTAMPTZ,
    PRIMARY KEY (user_id, achievement_id)
);
CREATE INDEX user_achievements_user_unlocked_at_idx ON user_achievements (user_id, unlocked_at);
CREATE INDEX user_achievements_achievement_idx ON user_achievements (achievement_id);
