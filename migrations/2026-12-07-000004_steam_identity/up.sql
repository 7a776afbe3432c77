-- Steam identity (README "Sign in through Steam"). A link is proven when
-- its owner signed in through Steam's OpenID provider for that SteamID;
-- links made before (typed SteamIDs, legacy imports) are not, until their
-- owner does. Only proven links reach leaderboards, compare and profiles.
ALTER TABLE steam_accounts ADD COLUMN verified_at TIMESTAMPTZ;

-- Attempts to take a SteamID that another account holds, for the admin
-- page: refused ones (the holder had proven it) and releases (an unproven
-- holder lost it to the proven owner, or to the first holder when this
-- migration found it held twice).
CREATE TABLE steam_id_conflicts (
    id INT8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    steam_id INT8 NOT NULL,
    holder_id INT8 REFERENCES users (id) ON DELETE SET NULL,
    claimant_id INT8 REFERENCES users (id) ON DELETE SET NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('refused', 'released')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX steam_id_conflicts_recent ON steam_id_conflicts (created_at DESC);

-- One account per SteamID. Where several accounts linked one before this,
-- the first to link keeps it; the others keep their key and library but
-- no SteamID (a half-link, completed by proving a SteamID), and each is
-- listed as a conflict.
WITH ranked AS (
    SELECT user_id, steam_id,
           first_value(user_id) OVER (PARTITION BY steam_id ORDER BY linked_at, user_id) AS keeper
    FROM steam_accounts WHERE steam_id IS NOT NULL
), released AS (
    UPDATE steam_accounts s SET steam_id = NULL
    FROM ranked r WHERE s.user_id = r.user_id AND r.user_id <> r.keeper
    RETURNING s.user_id, r.steam_id, r.keeper
)
INSERT INTO steam_id_conflicts (steam_id, holder_id, claimant_id, outcome)
SELECT steam_id, keeper, user_id, 'released' FROM released;
CREATE UNIQUE INDEX steam_accounts_steam_id_unique ON steam_accounts (steam_id);

-- Settings an admin keeps in the database: the instance's Steam Web API
-- key, encrypted with the master key like users' own keys.
CREATE TABLE instance_secrets (
    name TEXT PRIMARY KEY,
    value_enc BYTEA NOT NULL,
    key_id TEXT NOT NULL,
    last4 TEXT NOT NULL,
    updated_by INT8 REFERENCES users (id) ON DELETE SET NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
