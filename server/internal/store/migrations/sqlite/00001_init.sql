-- +goose Up
-- Times are TEXT in the fixed-width UTC form 2006-01-02T15:04:05.000000Z (see dbtime.go), so that
-- they sort and compare as strings and round-trip with microsecond precision, as on PostgreSQL.

CREATE TABLE connections (
    id                TEXT    NOT NULL PRIMARY KEY,
    name              TEXT    NOT NULL CONSTRAINT connections_name_key UNIQUE,
    provider_type     TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    revision          INTEGER NOT NULL,
    ever_activated    INTEGER NOT NULL DEFAULT 0,
    spec              TEXT    NOT NULL,
    created_by        TEXT    NOT NULL DEFAULT '',
    updated_by        TEXT    NOT NULL DEFAULT '',
    config_changed_by TEXT    NOT NULL DEFAULT '',
    activated_by      TEXT    NOT NULL DEFAULT '',
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL,
    activated_at      TEXT
);
CREATE INDEX connections_status_idx ON connections (status);
CREATE INDEX connections_provider_type_idx ON connections (provider_type);

CREATE TABLE principals (
    name       TEXT NOT NULL PRIMARY KEY,
    role       TEXT NOT NULL,
    key_hash   TEXT NOT NULL CONSTRAINT principals_key_hash_key UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE audit_events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL CONSTRAINT audit_events_id_key UNIQUE,
    "time"          TEXT NOT NULL,
    actor           TEXT NOT NULL DEFAULT '',
    action          TEXT NOT NULL,
    connection_id   TEXT NOT NULL DEFAULT '',
    connection_name TEXT NOT NULL DEFAULT '',
    outcome         TEXT NOT NULL DEFAULT '',
    reason          TEXT NOT NULL DEFAULT '',
    request_id      TEXT NOT NULL DEFAULT '',
    remote_addr     TEXT NOT NULL DEFAULT '',
    detail          TEXT NOT NULL DEFAULT 'null'
);
CREATE INDEX audit_events_connection_id_idx ON audit_events (connection_id, seq);
CREATE INDEX audit_events_connection_name_idx ON audit_events (connection_name, seq);
CREATE INDEX audit_events_action_idx ON audit_events (action, seq);
CREATE INDEX audit_events_actor_idx ON audit_events (actor, seq);
CREATE INDEX audit_events_time_idx ON audit_events ("time");

CREATE TABLE signing_keys (
    kid            TEXT NOT NULL PRIMARY KEY,
    algorithm      TEXT NOT NULL,
    public_jwk     TEXT NOT NULL,
    sealed_private BLOB NOT NULL,
    created_at     TEXT NOT NULL
);

CREATE TABLE change_counter (
    id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO change_counter (id, value) VALUES (1, 0);

-- +goose Down
DROP TABLE change_counter;
DROP TABLE signing_keys;
DROP TABLE audit_events;
DROP TABLE principals;
DROP TABLE connections;
