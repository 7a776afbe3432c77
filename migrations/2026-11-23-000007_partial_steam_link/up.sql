-- Accounts from the legacy app may have a Web API key without a SteamID, or
-- the other way round. Both halves are kept (nothing is lost) until the user
-- completes the link on the Steam page; such an account is never synced.
ALTER TABLE steam_accounts
    ALTER COLUMN steam_id DROP NOT NULL,
    ALTER COLUMN api_key_enc DROP NOT NULL,
    ALTER COLUMN api_key_key_id DROP NOT NULL,
    ALTER COLUMN api_key_last4 DROP NOT NULL,
    ADD CONSTRAINT steam_accounts_some_half CHECK (steam_id IS NOT NULL OR api_key_enc IS NOT NULL),
    ADD CONSTRAINT steam_accounts_key_whole CHECK (
        (api_key_enc IS NULL) = (api_key_key_id IS NULL) AND (api_key_enc IS NULL) = (api_key_last4 IS NULL));
