-- Image files are stored once per content: `image_blobs` is keyed by the
-- SHA-256 of the stored (re-encoded) bytes, and every use of an image is an
-- `images` row with its own random public name, so a URL never reveals the
-- hash and one user's upload never exposes another's.
CREATE TABLE image_blobs (
    sha256 TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    byte_size INT NOT NULL,
    width INT NOT NULL,
    height INT NOT NULL,
    storage_key TEXT NOT NULL UNIQUE,
    thumb_key TEXT NOT NULL UNIQUE,
    thumb_size INT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE images (
    id BIGSERIAL PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    -- NULL for the copy that belongs to a shared (community) achievement,
    -- which outlives its creator's account.
    owner_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    sha256 TEXT NOT NULL REFERENCES image_blobs (sha256),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX images_owner ON images (owner_id);
CREATE INDEX images_sha256 ON images (sha256);

CREATE TABLE custom_achievements (
    id BIGSERIAL PRIMARY KEY,
    owner_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    condition_type TEXT NOT NULL,
    -- The legacy shape (`{"games": ["400"]}` …); kept exactly as imported when
    -- it does not fit its type, in which case `needs_edit` is set and the
    -- achievement is never evaluated.
    condition JSONB NOT NULL,
    needs_edit BOOLEAN NOT NULL DEFAULT false,
    image_id BIGINT REFERENCES images (id) ON DELETE SET NULL,
    imported_from BIGINT,
    progress_current DOUBLE PRECISION NOT NULL DEFAULT 0,
    progress_target DOUBLE PRECISION NOT NULL DEFAULT 0,
    met_at TIMESTAMPTZ,
    evaluated_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX custom_achievements_owner ON custom_achievements (owner_id, created_at DESC);

CREATE TABLE community_achievements (
    id BIGSERIAL PRIMARY KEY,
    -- The achievement this was shared from; one share per achievement.
    source_id BIGINT UNIQUE REFERENCES custom_achievements (id) ON DELETE SET NULL,
    -- NULL once the creator's account is deleted ("deleted user").
    creator_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    condition_type TEXT NOT NULL,
    condition JSONB NOT NULL,
    needs_edit BOOLEAN NOT NULL DEFAULT false,
    image_id BIGINT REFERENCES images (id) ON DELETE SET NULL,
    tries_count INT NOT NULL DEFAULT 0,
    completions_count INT NOT NULL DEFAULT 0,
    shared_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    is_active BOOLEAN NOT NULL DEFAULT true,
    hidden_at TIMESTAMPTZ,
    hidden_by BIGINT REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX community_listed_newest ON community_achievements (shared_at DESC) WHERE is_active AND hidden_at IS NULL;
CREATE INDEX community_listed_tries ON community_achievements (tries_count DESC) WHERE is_active AND hidden_at IS NULL;
CREATE INDEX community_listed_completions ON community_achievements (completions_count DESC) WHERE is_active AND hidden_at IS NULL;

ALTER TABLE custom_achievements
    ADD CONSTRAINT custom_achievements_imported_from_fkey
    FOREIGN KEY (imported_from) REFERENCES community_achievements (id) ON DELETE SET NULL;
-- Importing the same shared achievement twice would count two tries.
CREATE UNIQUE INDEX custom_achievements_one_import ON custom_achievements (owner_id, imported_from)
    WHERE imported_from IS NOT NULL;
CREATE INDEX custom_achievements_image ON custom_achievements (image_id) WHERE image_id IS NOT NULL;
CREATE INDEX community_achievements_image ON community_achievements (image_id) WHERE image_id IS NOT NULL;
