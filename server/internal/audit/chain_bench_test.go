package audit

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// exchangeEvent is a granted exchange's audit event as the broker records it.
func exchangeEvent(i int) api.AuditEvent {
	return api.AuditEvent{
		ID: "0193a5b0-7c1e-7d2a-9f00-5a1b2c3d4e5f", Time: time.Date(2026, 12, 3, 10, 0, 0, 123456000, time.UTC),
		Actor: "repo:octo-org/octo-repo:ref:refs/heads/main", Action: api.ActionTokenExchange,
		ConnectionID: "0193a5a0-0000-7000-8000-000000000001", ConnectionName: "bench-github", Outcome: api.OutcomeGranted,
		RequestID: "0193a5c0-0000-7000-8000-000000000001", RemoteAddr: "127.0.0.1",
		Detail: map[string]any{"jti": "q1w2e3r4t5y6u7i8o9p0aa", "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
			"expires_at": "2026-12-03T10:15:00Z", "source_iss": "https://token.actions.githubusercontent.com"},
	}
}

// BenchmarkChainLink is what the hash chain adds to each event on the writer's goroutine: its
// place in the chain and its hash (canonical form + SHA-256).
func BenchmarkChainLink(b *testing.B) {
	l := link{id: "0193a5a0-1111-7000-8000-000000000002"}
	evs := make([]api.AuditEvent, 1024)
	for i := range evs {
		evs[i] = exchangeEvent(i)
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	for i := 0; b.Loop(); i++ {
		e := evs[i%len(evs)]
		if err := l.add(&e); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N)/1000, "cpu-µs/event")
}

// processCPU is this process's user+system CPU time: on a machine shared with other work, wall
// time per operation counts the time other processes had the core.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStreamBatch is what the stream adds per event at saturation's batch size (~8 events a
// commit): the lines, one write of them and one of the position.
func BenchmarkStreamBatch(b *testing.B) {
	dir := b.TempDir()
	s := &Stream{path: filepath.Join(dir, "audit.jsonl")}
	if err := s.openFiles(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer s.closeFiles()
	l := link{id: "0193a5a0-1111-7000-8000-000000000002"}
	s.pos = position{Chain: l.id}
	const batch = 8
	evs := make([]api.AuditEvent, batch)
	b.ReportAllocs()
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		for i := range evs {
			evs[i] = exchangeEvent(i)
			if err := l.add(&evs[i]); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		cpu0 := processCPU()
		if err := s.write(evs); err != nil {
			b.Fatal(err)
		}
		cpu += processCPU() - cpu0
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*batch)/1000, "cpu-µs/event")
}
