-- Change control (CONTRACT.md §1): an activated connection's pending proposal, as JSON
-- {"spec": <connection input>, "proposed_by": "...", "proposed_at": "<time>"}, NULL when none; and
-- the time of its latest deactivation, which retires every access token issued until then.

-- +goose Up
ALTER TABLE connections ADD COLUMN proposal TEXT;
ALTER TABLE connections ADD COLUMN deactivated_at TEXT;

-- +goose Down
ALTER TABLE connections DROP COLUMN deactivated_at;
ALTER TABLE connections DROP COLUMN proposal;
