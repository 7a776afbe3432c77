DELETE FROM steam_accounts WHERE steam_id IS NULL OR api_key_enc IS NULL;
ALTER TABLE steam_accounts
    DROP CONSTRAINT steam_accounts_some_half,
    DROP CONSTRAINT steam_accounts_key_whole,
    ALTER COLUMN steam_id SET NOT NULL,
    ALTER COLUMN api_key_enc SET NOT NULL,
    ALTER COLUMN api_key_key_id SET NOT NULL,
    ALTER COLUMN api_key_last4 SET NOT NULL;
