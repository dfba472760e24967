-- Workload sightings (CONTRACT.md §3): one row per connection, workload identity and outcome of
-- the exchanges whose CI token passed the signature and time checks, with the claims of the latest
-- such token (without iat, nbf, exp and jti) as JSON text. Replicas add their exchanges to a row
-- with one upsert per flush (store/sightings.go), so the unique key is what they meet on. No
-- foreign key to connections: a flush racing a connection's deletion must not fail the whole
-- batch; rows of deleted connections go with the retention pass instead.

-- +goose Up
CREATE TABLE workload_sightings (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id TEXT    NOT NULL,
    identity      TEXT    NOT NULL,
    outcome       TEXT    NOT NULL,
    first_seen    TEXT    NOT NULL,
    last_seen     TEXT    NOT NULL,
    exchanges     INTEGER NOT NULL,
    claims        TEXT    NOT NULL DEFAULT '{}',
    CONSTRAINT workload_sightings_key UNIQUE (connection_id, identity, outcome)
);
-- Newest first per connection: the list, the impact window and the per-connection cap.
CREATE INDEX workload_sightings_recent_idx ON workload_sightings (connection_id, last_seen, id);
-- Retention across every connection.
CREATE INDEX workload_sightings_last_seen_idx ON workload_sightings (last_seen);

-- +goose Down
DROP TABLE workload_sightings;
