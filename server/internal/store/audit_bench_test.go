package store_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

// BenchmarkAppendAudit measures one durable commit of a batch of granted-exchange events, shaped
// like the broker's (ids left empty for the store to fill), at batch sizes the audit writer forms:
// 1 (idle server), 8 (64 connections at saturation on two cores: the CPU, not the commit, is
// the bottleneck), 32 and 256 (its maximum). Wall time includes the
// fsyncs; CPU time (the whole process: Go and the transpiled SQLite) is what competes with the
// exchange's crypto for the cores.
func BenchmarkAppendAudit(b *testing.B) {
	for _, size := range []int{1, 8, 32, 256} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := storetest.New(b)
			ctx := ctxT(b)
			evs := make([]api.AuditEvent, size)
			for i := range evs {
				sub := fmt.Sprintf("repo:acme/app-%d:ref:refs/heads/main", i)
				evs[i] = api.AuditEvent{
					Actor: sub, Action: api.ActionTokenExchange, Outcome: api.OutcomeGranted,
					ConnectionID: "7f0c1a9e-2b4d-4e8f-9a6b-3c5d7e9f1a2b", ConnectionName: "deploy-prod",
					RequestID: fmt.Sprintf("req-%08d", i), RemoteAddr: "10.1.2.3",
					Detail: map[string]any{"jti": "5b2f0a4e-8c1d-4f3a-9e7b-6d5c4b3a2f1e", "sub": sub,
						"expires_at": "2026-11-28T18:00:00Z", "source_iss": "https://token.actions.githubusercontent.com"},
					// The hash chain's fields, as the writer fills them (migration 00008).
					Chain: "0193a5a0-1111-7000-8000-000000000002", Seq: int64(i + 1),
					PrevHash: "sha256:9ab3ce3bc2964197b9263ea2a247c70f0ad62c9460436ce3bedde12ecfef3ae5",
					Hash:     "sha256:f938fb7abfa8fb83fb4519bf5b882cffe257d37fbef9685ab411cb449ed05299",
				}
			}
			b.ResetTimer()
			start, cpu := time.Now(), processCPU()
			for b.Loop() {
				if err := s.AppendAudit(ctx, evs); err != nil {
					b.Fatal(err)
				}
			}
			events := float64(b.N * size)
			b.ReportMetric(float64(time.Since(start).Microseconds())/events, "µs/event")
			b.ReportMetric(float64((processCPU()-cpu).Microseconds())/events, "cpu-µs/event")
		})
	}
}

// BenchmarkAppendAuditOnce is BenchmarkAppendAudit for a single_use connection's batches: every
// event carries a new single-use record, inserted in the same transaction, into a table that
// already holds 50,000 records (a busy connection's last hour). Compare its cpu-µs/event with
// BenchmarkAppendAudit's at the same batch size: the difference is what single_use costs the
// database side of an exchange.
func BenchmarkAppendAuditOnce(b *testing.B) {
	prefill := 50000
	if v := os.Getenv("PREFILL"); v != "" {
		prefill, _ = strconv.Atoi(v)
	}
	for _, size := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := storetest.New(b)
			ctx := ctxT(b)
			until := time.Now().Add(time.Hour)
			n := 0
			key := func() string {
				n++
				return connection.SingleUseKey(map[string]any{"iss": "https://token.actions.githubusercontent.com", "jti": fmt.Sprintf("jti-%d", n)}, "")
			}
			const conn = "7f0c1a9e-2b4d-4e8f-9a6b-3c5d7e9f1a2b"
			for range prefill / 500 {
				recs := make([]connection.SingleUse, 500)
				for i := range recs {
					recs[i] = connection.SingleUse{ConnectionID: conn, TokenKey: key(), Until: until}
				}
				if err := s.AppendAuditOnce(ctx, recs, func([]bool) []api.AuditEvent { return nil }); err != nil {
					b.Fatal(err)
				}
			}
			evs := make([]api.AuditEvent, size)
			for i := range evs {
				sub := fmt.Sprintf("repo:acme/app-%d:ref:refs/heads/main", i)
				evs[i] = api.AuditEvent{
					Actor: sub, Action: api.ActionTokenExchange, Outcome: api.OutcomeGranted,
					ConnectionID: conn, ConnectionName: "deploy-prod",
					RequestID: fmt.Sprintf("req-%08d", i), RemoteAddr: "10.1.2.3",
					Detail: map[string]any{"jti": "5b2f0a4e-8c1d-4f3a-9e7b-6d5c4b3a2f1e", "sub": sub,
						"expires_at": "2026-11-28T18:00:00Z", "source_iss": "https://token.actions.githubusercontent.com"},
				}
			}
			recs := make([]connection.SingleUse, size)
			build := func([]bool) []api.AuditEvent { return evs }
			b.ResetTimer()
			start, cpu := time.Now(), processCPU()
			for b.Loop() {
				for i := range recs {
					recs[i] = connection.SingleUse{ConnectionID: conn, TokenKey: key(), Until: until}
				}
				if err := s.AppendAuditOnce(ctx, recs, build); err != nil {
					b.Fatal(err)
				}
			}
			events := float64(b.N * size)
			b.ReportMetric(float64(time.Since(start).Microseconds())/events, "µs/event")
			b.ReportMetric(float64((processCPU()-cpu).Microseconds())/events, "cpu-µs/event")
		})
	}
}
