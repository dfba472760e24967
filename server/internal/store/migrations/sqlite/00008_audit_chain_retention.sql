-- Audit at scale (CONTRACT.md §3): every event carries its place in the hash chain of the server
-- process that wrote it. chain_seq is the event's `seq` in that chain (the column `seq` is the
-- table's own insertion order). Events written before this migration have an empty chain: they
-- are not part of any chain and `trustgate audit verify` reports them as unchained.
-- Retention deletes old events in small batches through the "time" index (SQLite has no
-- partitions); ADD COLUMN with a constant default rewrites nothing.

-- +goose Up
ALTER TABLE audit_events ADD COLUMN chain TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN chain_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN hash TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE audit_events DROP COLUMN hash;
ALTER TABLE audit_events DROP COLUMN prev_hash;
ALTER TABLE audit_events DROP COLUMN chain_seq;
ALTER TABLE audit_events DROP COLUMN chain;
