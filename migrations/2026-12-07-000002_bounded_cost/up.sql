-- Who took a shared goal on, once per person: the tries and completions
-- counters move only when a row here is new (taking on) or first met
-- (completing), so deleting a copy and taking it on again counts nothing.
CREATE TABLE community_takers (
    community_id BIGINT NOT NULL REFERENCES community_achievements (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    taken_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ,
    PRIMARY KEY (community_id, user_id)
);
CREATE INDEX community_takers_user ON community_takers (user_id);

-- The copies that exist today already took their try (and completion).
INSERT INTO community_takers (community_id, user_id, taken_at, completed_at)
SELECT imported_from, owner_id, created_at, met_at
FROM custom_achievements WHERE imported_from IS NOT NULL
ON CONFLICT DO NOTHING;

-- A lock, an unlock or a rename changes what the leaderboards and the
-- community list show: cached copies of them go at once, as they do for
-- opting out or deleting an account.
CREATE CONSTRAINT TRIGGER users_shared AFTER UPDATE OF status, username ON users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.username IS DISTINCT FROM NEW.username)
    EXECUTE FUNCTION bump_shared_version();

-- Image addresses from Steam go into <img src> and og:image: only http(s)
-- ones are kept from now on, and any other kept before goes.
UPDATE game_achievements SET icon_url = NULL WHERE icon_url !~* '^https?://[^[:space:]]+$';
UPDATE game_achievements SET icon_gray_url = NULL WHERE icon_gray_url !~* '^https?://[^[:space:]]+$';
UPDATE steam_accounts SET avatar_url = NULL WHERE avatar_url !~* '^https?://[^[:space:]]+$';
UPDATE games SET icon_hash = NULL WHERE icon_hash !~ '^[A-Za-z0-9]{1,64}$';
