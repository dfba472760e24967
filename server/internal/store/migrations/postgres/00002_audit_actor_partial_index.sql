-- The actor index serves one query: a principal's own actions (GET /v1/audit-events as a devops
-- admin, or ?actor=). Token exchanges never belong there (their actor is the workload's subject),
-- yet they are nearly every audit event: keeping them out of the index makes each exchange's
-- durable audit insert cheaper (BENCHMARKS.md). The store's actor filter repeats this WHERE clause
-- literally so that the planner can use the partial index.
--
-- CONCURRENTLY (hence no transaction): on a large audit table a plain CREATE INDEX would block
-- every exchange's audit insert, i.e. every token exchange, until the build finished. Replicas
-- starting at once are serialised by the migration advisory lock; IF [NOT] EXISTS makes a retry
-- after an interrupted run succeed. An interrupted concurrent build can leave an INVALID index
-- behind: `DROP INDEX CONCURRENTLY audit_events_admin_actor_idx;` and restart.

-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_events_admin_actor_idx ON audit_events (actor, seq) WHERE action <> 'token.exchange';
DROP INDEX CONCURRENTLY IF EXISTS audit_events_actor_idx;

-- +goose Down
CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_events_actor_idx ON audit_events (actor, seq);
DROP INDEX CONCURRENTLY IF EXISTS audit_events_admin_actor_idx;
