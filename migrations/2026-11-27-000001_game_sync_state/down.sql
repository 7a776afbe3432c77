ALTER TABLE library_entries
    DROP COLUMN synced_playtime_minutes,
    DROP COLUMN sync_failures,
    DROP COLUMN sync_error,
    DROP COLUMN retry_after;
