package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

// auditMDExampleHash is the hash of the example event in AUDIT.md.
const auditMDExampleHash = "sha256:c3ff1e79bc5a0ac4a0516bd26c18e2957cc2488c91f18ee2e03d4f49c9277576"

// A fixed event, its canonical form and its hash: the worked example of AUDIT.md.
func TestCanonicalFormOfAKnownEvent(t *testing.T) {
	ev := api.AuditEvent{
		ID: "0193a5b0-7c1e-7d2a-9f00-5a1b2c3d4e5f", Time: time.Date(2026, 12, 3, 10, 0, 0, 120000000, time.UTC),
		Actor: "repo:acme/app:ref:refs/heads/main", Action: api.ActionTokenExchange,
		ConnectionID: "0193a5a0-0000-7000-8000-000000000001", ConnectionName: "acme-app", Outcome: api.OutcomeGranted,
		RequestID: "req-1", RemoteAddr: "10.0.0.7",
		Detail: map[string]any{"jti": "x1", "ttl_seconds": 900},
		Chain:  "0193a5a0-1111-7000-8000-000000000002", Seq: 2, PrevHash: "sha256:" + strings.Repeat("ab", 32),
	}
	got, err := AppendCanonical(nil, &ev, false)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"action":"token.exchange","actor":"repo:acme/app:ref:refs/heads/main","chain":"0193a5a0-1111-7000-8000-000000000002",` +
		`"connection_id":"0193a5a0-0000-7000-8000-000000000001","connection_name":"acme-app","detail":{"jti":"x1","ttl_seconds":900},` +
		`"id":"0193a5b0-7c1e-7d2a-9f00-5a1b2c3d4e5f","outcome":"granted","prev_hash":"sha256:` + strings.Repeat("ab", 32) + `",` +
		`"reason":"","remote_addr":"10.0.0.7","request_id":"req-1","seq":2,"time":"2026-12-03T10:00:00.12Z"}`
	if string(got) != want {
		t.Fatalf("canonical form:\n got  %s\n want %s", got, want)
	}
	h, err := EventHash(&ev)
	if err != nil {
		t.Fatal(err)
	}
	if h != hashBytes([]byte(want)) || h != auditMDExampleHash {
		t.Fatalf("hash %s, want sha256 of the canonical form, %s (AUDIT.md)", h, auditMDExampleHash)
	}
}

// The writer's direct encoder and the generic canonicalizer (what the verifier and a third party
// use on a line of JSON) agree, whatever the event holds; the database's round trip (detail stored
// as JSON, read back as float64s) changes nothing either.
func TestCanonicalDirectEqualsGeneric(t *testing.T) {
	events := []api.AuditEvent{
		{},
		{ID: "a", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Detail: map[string]any{}},
		{Actor: "é \u2028 \u0000 \x01 \x1f \" \\ / < > & \t\n\r\b\f \U0001F600", Reason: string([]byte{0xff, 'a', 0xc3}),
			Detail: map[string]any{
				"ints":   []any{0, -1, 1 << 53, int64(math.MaxInt64), 12345678901234},
				"floats": []any{0.1, 1e21, 1e-7, -2.5e-9, 123456789012345680000.0, 1.0, math.Copysign(0, -1)},
				"strs":   []string{"x", "\u00e9", string([]byte{0xfe})},
				"nested": map[string]any{"b": true, "a": nil, "é": "z", "\U0001F600": 1, "\uff61": 2, "Z": map[string]string{"k": "v"}},
				"time":   time.Date(2026, 1, 1, 0, 0, 0, 5, time.UTC),
				"struct": struct {
					A int `json:"a"`
					B []int
				}{1, []int{2, 3}},
				"nilmap": map[string]any(nil),
				"nils":   []any{[]string(nil), map[string]string(nil), []any(nil)},
			}},
		{Chain: "c", Seq: 7, PrevHash: "p", Hash: "h", Time: time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC), Action: "x"},
	}
	for i, ev := range events {
		direct, err := AppendCanonical(nil, &ev, true)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		raw, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		generic, err := Canonicalize(raw, "")
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if string(direct) != string(generic) {
			t.Errorf("event %d:\n direct  %s\n generic %s", i, direct, generic)
		}
		var back api.AuditEvent // what the store returns: detail decoded into float64s
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		again, err := AppendCanonical(nil, &back, true)
		if err != nil || string(again) != string(direct) {
			t.Errorf("event %d after a JSON round trip:\n %s\n %s (%v)", i, again, direct, err)
		}
	}
	if _, err := AppendCanonical(nil, &api.AuditEvent{Detail: map[string]any{"x": math.NaN()}}, false); err == nil {
		t.Error("NaN in a detail has a canonical form")
	}
}

// testKeys is a real signing key ring and its public JWKS.
func testKeys(t *testing.T) (*signing.KeyRing, []byte) {
	t.Helper()
	kek := make([]byte, signing.KEKSize)
	k, err := signing.NewStoredKey(kek, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ring, err := signing.NewKeyRing([]signing.StoredKey{k}, kek)
	if err != nil {
		t.Fatal(err)
	}
	return ring, ring.JWKS()
}

func jwksChecker(sets ...[]byte) func(string, []byte) (string, error) {
	return func(jws string, payload []byte) (string, error) {
		var last error
		for _, s := range sets {
			kid, err := signing.VerifyDetached(s, CheckpointType, jws, payload)
			if err == nil {
				return kid, nil
			}
			last = err
		}
		return "", last
	}
}

// verifyStore walks the store's audit log through a Verifier with the public JWKS alone.
func verifyStore(t *testing.T, s *store.Store, jwks []byte) (*Verifier, error) {
	t.Helper()
	v := &Verifier{CheckSignature: jwksChecker(jwks)}
	err := s.WalkAudit(context.Background(), 7, func(page []api.AuditEvent) error {
		for i := range page {
			if err := v.Add(&page[i], nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = v.Finish()
	}
	return v, err
}

// Concurrent events get consecutive seqs linked by their hashes; a checkpoint covers the event
// before it and verifies with the public JWKS alone; Close signs the rest; a checkpoint with
// nothing new to cover is not written.
func TestWriterChainsEventsAndSignsCheckpoints(t *testing.T) {
	s := storetest.New(t)
	ring, jwks := testKeys(t)
	w := NewWriter(s, Options{Signer: ring, CheckpointEvery: -1})
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if err := w.Record(ctx, ev(i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := w.Checkpoint(ctx); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	if err := w.Checkpoint(ctx); err != nil { // nothing new: no event
		t.Fatalf("Checkpoint: %v", err)
	}
	if err := w.Record(ctx, ev(40)); err != nil {
		t.Fatal(err)
	}
	w.Close()

	v, err := verifyStore(t, s, jwks)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	chains := v.Chains()
	if len(chains) != 1 || chains[0].Chain != w.Chain() || chains[0].First != 1 || chains[0].Last != 43 || chains[0].LastCheckpoint != 43 ||
		chains[0].CheckpointKID != ring.KID() {
		t.Fatalf("chains = %+v; want one chain, seq 1–43 (41 events, 2 checkpoints), the last a checkpoint by %s", chains, ring.KID())
	}
	page, _, err := s.ListAudit(ctx, connection.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	cp := page[2] // newest first: final checkpoint, event 40, first checkpoint
	if cp.Action != api.ActionAuditCheckpoint || cp.Seq != 41 || cp.Detail["seq"] != float64(40) || cp.Detail["hash"] != cp.PrevHash ||
		cp.Detail["kid"] != ring.KID() || cp.Detail["chain"] != w.Chain() {
		t.Errorf("first checkpoint = %+v", cp)
	}

	// Another key's JWKS does not verify the checkpoints.
	_, other := testKeys(t)
	if _, err := verifyStore(t, s, other); !isBreak(err, "checkpoint") {
		t.Errorf("verify with another key set: %v, want a checkpoint break", err)
	}
}

func isBreak(err error, kind string) bool {
	var b *Break
	return errors.As(err, &b) && b.Kind == kind
}

// chainOf builds a chain of n events as the writer would (without a store).
func chainOf(t *testing.T, ring *signing.KeyRing, n int, checkpointAt ...int) []api.AuditEvent {
	t.Helper()
	w := &Writer{opts: Options{Signer: ring, Now: time.Now}}
	l := link{id: "chain-x"}
	var out []api.AuditEvent
	for i := 1; len(out) < n; i++ {
		e := ev(i)
		e.ID, e.Time = fmt.Sprintf("id-%d", len(out)+1), time.Date(2026, 12, 1, 0, 0, i, 0, time.UTC)
		if slices.Contains(checkpointAt, len(out)+1) {
			var ok bool
			var err error
			if e, ok, err = w.checkpointEvent(&l); err != nil || !ok {
				t.Fatalf("checkpoint: %v %v", ok, err)
			}
		}
		if err := l.add(&e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func verifyEvents(ring []byte, evs []api.AuditEvent, asLines bool) error {
	v := &Verifier{CheckSignature: jwksChecker(ring)}
	for i := range evs {
		var raw []byte
		if asLines {
			raw, _ = AppendCanonical(nil, &evs[i], true)
		}
		if err := v.Add(&evs[i], raw); err != nil {
			return err
		}
	}
	return v.Finish()
}

// The verifier names the first event changed, removed from the middle or reordered, and accepts a
// chain whose start was removed by retention.
func TestVerifierFindsTheFirstBrokenEvent(t *testing.T) {
	ring, jwks := testKeys(t)
	good := chainOf(t, ring, 12, 5, 10)
	for _, lines := range []bool{false, true} {
		if err := verifyEvents(jwks, good, lines); err != nil {
			t.Fatalf("an intact chain: %v", err)
		}
		if err := verifyEvents(jwks, good[4:], lines); err != nil {
			t.Errorf("a chain whose first 4 events retention removed: %v", err)
		}
		cases := []struct {
			name   string
			tamper func([]api.AuditEvent) []api.AuditEvent
			kind   string
			seq    int64
		}{
			{"edited", func(e []api.AuditEvent) []api.AuditEvent { e[6].Reason = "nothing to see"; return e }, "changed", 7},
			{"edited and rehashed", func(e []api.AuditEvent) []api.AuditEvent {
				e[6].Outcome = api.OutcomeDenied
				e[6].Hash, _ = EventHash(&e[6])
				return e
			}, "changed", 7},
			{"removed", func(e []api.AuditEvent) []api.AuditEvent { return slices.Delete(e, 7, 8) }, "removed", 9},
			{"reordered", func(e []api.AuditEvent) []api.AuditEvent { e[7], e[8] = e[8], e[7]; return e }, "reordered", 8},
			{"inserted without a chain", func(e []api.AuditEvent) []api.AuditEvent {
				return slices.Insert(e, 6, api.AuditEvent{ID: "forged", Action: api.ActionConnectionApprove, Actor: "mallory"})
			}, "inserted", 0},
			{"checkpoint removed", func(e []api.AuditEvent) []api.AuditEvent { return slices.Delete(e, 9, 10) }, "removed", 11},
			{"checkpoint forged", func(e []api.AuditEvent) []api.AuditEvent {
				e[9].Detail = maps(e[9].Detail, "jws", e[4].Detail["jws"])
				e[9].Hash, _ = EventHash(&e[9])
				e[10].PrevHash = e[9].Hash
				e[10].Hash, _ = EventHash(&e[10])
				e[11].PrevHash = e[10].Hash
				e[11].Hash, _ = EventHash(&e[11])
				return e
			}, "checkpoint", 10},
		}
		for _, c := range cases {
			evs := c.tamper(slices.Clone(good))
			err := verifyEvents(jwks, evs, lines)
			var b *Break
			if !errors.As(err, &b) || b.Kind != c.kind || b.Seq != c.seq || (b.Chain != "chain-x" && c.kind != "inserted") {
				t.Errorf("%s (lines %v): %v, want %s at seq %d", c.name, lines, err, c.kind, c.seq)
			}
		}
	}
}

func maps(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for kk, vv := range m {
		out[kk] = vv
	}
	out[k] = v
	return out
}

// Two writers on one database at once (two replicas) make two chains, each intact.
func TestTwoReplicasWritingAtOnceMakeTwoValidChains(t *testing.T) {
	dsn := testdb.DSN(t)
	ring, jwks := testKeys(t)
	var stores []*store.Store
	for range 2 {
		s, err := store.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		stores = append(stores, s)
	}
	writers := []*Writer{NewWriter(stores[0], Options{Signer: ring, CheckpointEvery: -1}), NewWriter(stores[1], Options{Signer: ring, CheckpointEvery: -1})}
	var wg sync.WaitGroup
	for _, w := range writers {
		for i := range 100 {
			wg.Go(func() {
				if err := w.Record(context.Background(), ev(i)); err != nil {
					t.Error(err)
				}
				if i%25 == 0 {
					if err := w.Checkpoint(context.Background()); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}
	wg.Wait()
	for _, w := range writers {
		w.Close()
	}
	v, err := verifyStore(t, stores[0], jwks)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	chains := v.Chains()
	if len(chains) != 2 {
		t.Fatalf("%d chains, want 2: %+v", len(chains), chains)
	}
	for _, c := range chains {
		if c.First != 1 || c.Events != c.Last || c.Last < 101 || c.LastCheckpoint != c.Last {
			t.Errorf("chain %+v: want seq 1 to the end, 100 events plus checkpoints, ending in a checkpoint", c)
		}
	}
}

// Retention removes what is older than Keep by the injected clock, and the chain's remaining
// events still verify (its start is allowed to be missing).
func TestRetentionRunOnceWithInjectedClock(t *testing.T) {
	s := storetest.New(t)
	ring, jwks := testKeys(t)
	clock := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	w := NewWriter(s, Options{Signer: ring, CheckpointEvery: -1, Now: now})
	for i := range 30 {
		e := ev(i)
		e.Time = clock.Add(time.Duration(i) * 24 * time.Hour) // one event a day for 30 days
		if err := w.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	clock = clock.Add(30 * 24 * time.Hour)
	w.Close() // final checkpoint at the clock's time
	r := &Retention{Store: s, Keep: 10*24*time.Hour + time.Hour, Batch: 3, Pause: -1, Now: now}
	removed, err := r.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	v, err := verifyStore(t, s, jwks)
	if err != nil {
		t.Fatalf("verify after retention: %v", err)
	}
	c := v.Chains()
	// Events of days 20–29 are within 10 days and an hour of day 30; days 0–19 are gone.
	if len(c) != 1 || c[0].First != 21 || c[0].Last != 31 || c[0].Events != 11 {
		t.Fatalf("after retention: %+v (removed %d); want seq 21–31 left", c, removed)
	}
	if s.Dialect() != store.DialectPostgres && removed != 20 {
		t.Errorf("removed %d, want 20", removed)
	}
	if _, err := (&Retention{Store: s, Keep: time.Millisecond}).RunOnce(context.Background()); err == nil {
		t.Error("a retention below 1s was accepted")
	}
}

// streamLines reads a stream file's events.
func streamLines(t *testing.T, path string) []api.AuditEvent {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []api.AuditEvent
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		var e api.AuditEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// The stream writes every durable event once, in commit order: across a reopen (rotation), after a
// "crash" that left committed events unwritten and a partial last line, and across restarts.
func TestStreamExactlyOnceAcrossRotationAndCrash(t *testing.T) {
	s := storetest.New(t)
	ring, jwks := testKeys(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	ctx := context.Background()

	// Process 1: streams 5 events, rotates, streams 5 more, then "crashes": 4 more events are
	// committed with no stream attached (the process died before writing them), and the last
	// line in the file is cut in the middle.
	st1, err := OpenStream(ctx, path, "chain-1", s, nil)
	if err != nil {
		t.Fatal(err)
	}
	// No signer: a crashed process writes no final checkpoint.
	w1 := NewWriter(s, Options{Chain: "chain-1", OnDurable: st1.Enqueue})
	record := func(w *Writer, n int) {
		for i := range n {
			if err := w.Record(ctx, ev(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	record(w1, 5)
	waitStreamed(t, st1, 5)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := st1.Reopen(); err != nil {
		t.Fatal(err)
	}
	record(w1, 5)
	waitStreamed(t, st1, 10)
	st1.Close() // stands for the process's end: the writer commits 4 more that are never written
	record(w1, 4)
	w1.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"action":"token.exch`); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	// Process 2 catches up chain-1 (seq 11–14) before its own chain, then writes its own.
	st2, err := OpenStream(ctx, path, "chain-2", s, nil)
	if err != nil {
		t.Fatalf("OpenStream after the crash: %v", err)
	}
	if _, err := OpenStream(ctx, path, "chain-3", s, nil); err == nil {
		t.Error("a second process could open the same stream")
	}
	w2 := NewWriter(s, Options{Chain: "chain-2", Signer: ring, CheckpointEvery: -1, OnDurable: st2.Enqueue})
	record(w2, 3)
	w2.Close() // + final checkpoint
	if err := st2.Close(); err != nil {
		t.Fatal(err)
	}

	// Process 3 finds chain-2 complete and chain-1 is not its business any more: it starts its own.
	st3, err := OpenStream(ctx, path, "chain-3", s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st3.Close(); err != nil {
		t.Fatal(err)
	}

	lines := append(streamLines(t, path+".1"), streamLines(t, path)...)
	var got []string
	for _, e := range lines {
		got = append(got, fmt.Sprintf("%s/%d", e.Chain, e.Seq))
	}
	var want []string
	for i := 1; i <= 14; i++ {
		want = append(want, fmt.Sprintf("chain-1/%d", i))
	}
	for i := 1; i <= 4; i++ {
		want = append(want, fmt.Sprintf("chain-2/%d", i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("streamed %v\nwant     %v", got, want)
	}
	var inDB []string
	if err := s.WalkAudit(ctx, 100, func(page []api.AuditEvent) error {
		for _, e := range page {
			inDB = append(inDB, fmt.Sprintf("%s/%d", e.Chain, e.Seq))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(inDB, want) {
		t.Fatalf("the database holds %v, the stream %v", inDB, got)
	}
	// The streamed files verify as one log with the public JWKS.
	v := &Verifier{CheckSignature: jwksChecker(jwks)}
	for _, file := range []string{path + ".1", path} {
		b, _ := os.ReadFile(file)
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var e api.AuditEvent
			_ = json.Unmarshal([]byte(line), &e)
			if err := v.Add(&e, []byte(line)); err != nil {
				t.Fatalf("verify the stream: %v", err)
			}
		}
	}
	if err := v.Finish(); err != nil {
		t.Fatal(err)
	}
}

// waitStreamed waits until the stream's position reaches seq (the stream writes in the background).
func waitStreamed(t *testing.T, s *Stream, seq int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.mu.Lock()
		p := s.pos.Seq
		s.mu.Unlock()
		if p >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream at seq %d, want %d", p, seq)
		}
		time.Sleep(time.Millisecond)
	}
}

// Work run through Exclusive (a connection change's own transaction) takes its place in the
// chain between batches; when it fails after sealing, nothing of it is counted and the chain goes
// on intact.
func TestExclusiveWorkJoinsTheChain(t *testing.T) {
	s := storetest.New(t)
	ring, jwks := testKeys(t)
	var streamed []api.AuditEvent
	var mu sync.Mutex
	w := NewWriter(s, Options{Signer: ring, CheckpointEvery: -1, OnDurable: func(evs []api.AuditEvent) {
		mu.Lock()
		streamed = append(streamed, evs...)
		mu.Unlock()
	}})
	ctx := context.Background()
	if err := w.Record(ctx, ev(1)); err != nil {
		t.Fatal(err)
	}
	insert := func(fail bool) error {
		return w.Exclusive(ctx, func(ctx context.Context, seal func(*api.AuditEvent) error) error {
			e := ev(2)
			e.ID, e.Time = fmt.Sprintf("excl-%v", fail), time.Now().UTC().Truncate(time.Microsecond)
			if err := seal(&e); err != nil {
				return err
			}
			if fail {
				return errors.New("the transaction rolled back")
			}
			return s.AppendAudit(ctx, []api.AuditEvent{e})
		})
	}
	if err := insert(true); err == nil {
		t.Fatal("a failed exclusive transaction reported success")
	}
	if err := insert(false); err != nil {
		t.Fatal(err)
	}
	if err := w.Record(ctx, ev(3)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	v, err := verifyStore(t, s, jwks)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if c := v.Chains(); len(c) != 1 || c[0].Last != 4 || c[0].Events != 4 {
		t.Fatalf("chains %+v: want event, exclusive event, event, checkpoint as seq 1–4", c)
	}
	var ids []string
	for _, e := range streamed {
		ids = append(ids, e.ID)
	}
	if len(streamed) != 4 || streamed[1].ID != "excl-false" || streamed[1].Seq != 2 {
		t.Errorf("durable events handed on: %v", ids)
	}
}
