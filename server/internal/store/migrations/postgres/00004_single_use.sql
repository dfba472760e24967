-- Single-use CI tokens (CONTRACT.md §1 single_use): one row per CI token exchanged through a
-- single_use connection, inserted in the same transaction as the exchange's audit event; a second
-- insert of the same (connection_id, token_key) is a replay. token_key is a fixed-size hash of the
-- token's iss and jti (or of the whole token). Rows are removed in small batches once expires_at
-- (the token's exp + 60 s) has passed, by the index on expires_at. No foreign key to connections:
-- a deleted connection's rows simply expire. The keys are ids and hashes, compared byte for byte
-- (COLLATE "C"), which spares every index comparison the database's locale rules.

-- +goose Up
CREATE TABLE single_use_tokens (
    connection_id TEXT COLLATE "C" NOT NULL,
    token_key     TEXT COLLATE "C" NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT single_use_tokens_pkey PRIMARY KEY (connection_id, token_key)
);
CREATE INDEX single_use_tokens_expires_at_idx ON single_use_tokens (expires_at);

-- +goose Down
DROP TABLE single_use_tokens;
