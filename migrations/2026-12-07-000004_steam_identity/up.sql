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
-- the first to link keeps it; the others keep their key (a half-link,
-- completed by proving a SteamID) but not the SteamID, and each is listed
-- as a conflict. The games they synced go with the SteamID.
-- The version triggers fire now, not at commit: an index cannot be made
-- on a table with trigger events pending.
SET CONSTRAINTS ALL IMMEDIATE;
CREATE TEMPORARY TABLE released_steam_ids ON COMMIT DROP AS
SELECT user_id, steam_id, keeper FROM (
    SELECT user_id, steam_id,
           first_value(user_id) OVER (PARTITION BY steam_id ORDER BY linked_at, user_id) AS keeper
    FROM steam_accounts WHERE steam_id IS NOT NULL
) ranked WHERE user_id <> keeper;
INSERT INTO steam_id_conflicts (steam_id, holder_id, claimant_id, outcome)
SELECT steam_id, keeper, user_id, 'released' FROM released_steam_ids;
-- Their syncs of the SteamID they lost stop here (a running one's writes
-- check its lease, which this takes away).
UPDATE jobs SET status = 'done', lease_token = NULL, locked_until = NULL, finished_at = now(),
       last_error = 'Stopped: another account linked this Steam account first; prove yours by signing in through Steam.'
WHERE kind = 'steam_sync' AND status IN ('queued', 'running')
  AND user_id IN (SELECT user_id FROM released_steam_ids);
DELETE FROM user_achievements WHERE user_id IN (SELECT user_id FROM released_steam_ids);
DELETE FROM removed_unlocks WHERE user_id IN (SELECT user_id FROM released_steam_ids);
DELETE FROM library_entries WHERE user_id IN (SELECT user_id FROM released_steam_ids);
DELETE FROM removed_games WHERE user_id IN (SELECT user_id FROM released_steam_ids);
DELETE FROM user_scores WHERE user_id IN (SELECT user_id FROM released_steam_ids);
DELETE FROM steam_accounts
WHERE user_id IN (SELECT user_id FROM released_steam_ids) AND api_key_enc IS NULL;
UPDATE steam_accounts SET steam_id = NULL, persona_name = NULL, avatar_url = NULL, last_synced_at = NULL
WHERE user_id IN (SELECT user_id FROM released_steam_ids);
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

-- Leaderboards, compare and profiles (cached under the shared version)
-- change when a link is proven, released or its persona moves.
CREATE CONSTRAINT TRIGGER steam_accounts_shared
    AFTER INSERT OR DELETE OR UPDATE OF steam_id, verified_at, persona_name, avatar_url ON steam_accounts
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_shared_version();
