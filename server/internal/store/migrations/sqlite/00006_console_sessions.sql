-- The review console's sessions (CONTRACT.md §7): one row per signed-in browser, shared by every
-- replica. The cookie holds a random token; only its SHA-256 is stored, as for API keys, so a
-- copy of this table signs nobody in. A session belongs to a principal: revoking the principal's
-- key ends its sessions (the lookup joins principals and requires revoked_at IS NULL). Expired rows
-- are deleted at sign-in; the expires_at index serves that and keeps the table small.

-- +goose Up
CREATE TABLE console_sessions (
    token_hash TEXT        NOT NULL PRIMARY KEY,
    principal  TEXT        NOT NULL REFERENCES principals (name),
    created_at TEXT        NOT NULL,
    expires_at TEXT        NOT NULL
);
CREATE INDEX console_sessions_expires_at_idx ON console_sessions (expires_at);

-- +goose Down
DROP TABLE console_sessions;
