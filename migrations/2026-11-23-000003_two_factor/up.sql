-- TOTP two-factor authentication. Secrets are AES-256-GCM ciphertexts under
-- the master key named by the key id beside them.
ALTER TABLE users
    ADD COLUMN totp_secret_enc  BYTEA,
    ADD COLUMN totp_key_id      TEXT,
    ADD COLUMN totp_enabled_at  TIMESTAMPTZ,
    -- The last 30-second step a code was accepted for: a code is usable once.
    ADD COLUMN totp_last_step   BIGINT,
    -- A secret being enrolled, until the user confirms it with a code.
    ADD COLUMN totp_pending_enc BYTEA,
    ADD COLUMN totp_pending_key_id TEXT,
    ADD CONSTRAINT users_totp_complete CHECK ((totp_enabled_at IS NULL) = (totp_secret_enc IS NULL));

CREATE TABLE backup_codes (
    id        BIGSERIAL PRIMARY KEY,
    user_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash BYTEA NOT NULL,
    used_at   TIMESTAMPTZ,
    CONSTRAINT backup_codes_user_code_key UNIQUE (user_id, code_hash)
);
