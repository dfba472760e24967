-- The actor index serves one query: a principal's own actions (GET /v1/audit-events as a devops
-- admin, or ?actor=). Token exchanges never belong there (their actor is the workload's subject),
-- yet they are nearly every audit event and their subjects land at random places in the index:
-- keeping them out of it makes each exchange's durable audit insert about a third cheaper
-- (BENCHMARKS.md). The store's actor filter repeats this WHERE clause literally so that the
-- planner can use the partial index.

-- +goose Up
CREATE INDEX audit_events_admin_actor_idx ON audit_events (actor, seq) WHERE action <> 'token.exchange';
DROP INDEX audit_events_actor_idx;

-- +goose Down
CREATE INDEX audit_events_actor_idx ON audit_events (actor, seq);
DROP INDEX audit_events_admin_actor_idx;
