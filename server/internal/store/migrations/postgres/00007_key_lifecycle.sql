-- Signing-key lifecycle and token revocations (CONTRACT.md §2 key lifecycle, §3 POST /v1/revoke).
--
-- signing_keys: a key is published from created_at, signs from activates_at until the next key's
-- activates_at, and is published until that moment + 24 h + 60 s (the longest token it signed has
-- expired). withdrawn_at marks a key withdrawn after a compromise: never published again.
-- kek_id names the key-encryption key sealed_private is sealed with ('' for keys sealed before
-- this migration); sealed_private is emptied once the key can never sign again.
--
-- lifecycle_counters: one row per thing replicas poll for ('signing_keys', 'revocations'); each
-- change bumps its counter in the change's transaction. The row lock that the bump takes orders
-- the changes' commits, which is what lets replicas read revocations incrementally by seq.
--
-- token_revocations: one row per revoked access token until the token expires. seq is the value of
-- the 'revocations' counter that the revocation's transaction set, so replicas read only the rows
-- newer than the last seq they saw.

-- +goose Up
ALTER TABLE signing_keys ADD COLUMN activates_at TIMESTAMPTZ;
UPDATE signing_keys SET activates_at = created_at;
ALTER TABLE signing_keys ALTER COLUMN activates_at SET NOT NULL;
ALTER TABLE signing_keys ADD COLUMN withdrawn_at TIMESTAMPTZ;
ALTER TABLE signing_keys ADD COLUMN kek_id TEXT NOT NULL DEFAULT '';

CREATE TABLE lifecycle_counters (
    name  TEXT   NOT NULL PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO lifecycle_counters (name, value) VALUES ('signing_keys', 0), ('revocations', 0);

CREATE TABLE token_revocations (
    jti           TEXT        NOT NULL PRIMARY KEY,
    connection_id TEXT        NOT NULL DEFAULT '',
    expires_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ NOT NULL,
    seq           BIGINT      NOT NULL
);
CREATE INDEX token_revocations_seq_idx ON token_revocations (seq);
CREATE INDEX token_revocations_expires_at_idx ON token_revocations (expires_at);

-- +goose Down
DROP TABLE token_revocations;
DROP TABLE lifecycle_counters;
ALTER TABLE signing_keys DROP COLUMN kek_id;
ALTER TABLE signing_keys DROP COLUMN withdrawn_at;
ALTER TABLE signing_keys DROP COLUMN activates_at;
