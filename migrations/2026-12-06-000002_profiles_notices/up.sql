-- What a user shares and is sent. Absent row = every default: private
-- profile, off the leaderboards, no digest.
CREATE TABLE user_preferences (
    user_id             INT8 PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    profile_public      BOOL NOT NULL DEFAULT FALSE,
    show_stats          BOOL NOT NULL DEFAULT TRUE,
    show_perfect        BOOL NOT NULL DEFAULT TRUE,
    show_library        BOOL NOT NULL DEFAULT FALSE,
    show_goals          BOOL NOT NULL DEFAULT FALSE,
    on_leaderboard      BOOL NOT NULL DEFAULT FALSE,
    weekly_digest       BOOL NOT NULL DEFAULT FALSE,
    -- The digest's one-click unsubscribe link carries this; it can do
    -- nothing but turn the digest off.
    unsubscribe_token   TEXT NOT NULL UNIQUE,
    digest_sent_at      TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX user_preferences_leaderboard ON user_preferences (user_id) WHERE on_leaderboard;
CREATE INDEX user_preferences_digest ON user_preferences (digest_sent_at) WHERE weekly_digest;
