-- Each game's own sync state. A game's state advances only when its
-- achievements are stored: `synced_playtime_minutes` is the playtime seen by
-- the last successful fetch (NULL: fetch it), and a failure is recorded on
-- the game with a time before which it is not tried again.
ALTER TABLE library_entries
    ADD COLUMN synced_playtime_minutes integer,
    ADD COLUMN sync_failures integer NOT NULL DEFAULT 0,
    ADD COLUMN sync_error text,
    ADD COLUMN retry_after timestamptz;

-- Left NULL on purpose: the old rule stored a game's new playtime before its
-- achievements, so a failed sync could leave a game looking current while
-- its unlocks were stale. Every game is fetched once more, and every library
-- converges on what Steam says.
