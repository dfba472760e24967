-- Single-use CI tokens (CONTRACT.md §1 single_use): one row per CI token exchanged through a
-- single_use connection, inserted in the same transaction as the exchange's audit event; a second
-- insert of the same (connection_id, token_key) is a replay. token_key is a fixed-size hash of the
-- token's iss and jti (or of the whole token). Rows are removed in small batches once expires_at
-- (the token's exp + 60 s, as fixed-width UTC text, so text order is time order) has passed.
-- WITHOUT ROWID: the primary key is the table, so an insert writes one b-tree, not two.

-- +goose Up
CREATE TABLE single_use_tokens (
    connection_id TEXT NOT NULL,
    token_key     TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    PRIMARY KEY (connection_id, token_key)
) WITHOUT ROWID;
CREATE INDEX single_use_tokens_expires_at_idx ON single_use_tokens (expires_at);

-- +goose Down
DROP TABLE single_use_tokens;
