package broker

import (
	"context"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/audit"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/jwtverify"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/sightings"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

// BenchmarkExchangeRecordingSightings is what recording workload sightings costs an exchange
// (CONTRACT.md §3: under 5 % of its CPU): granted exchanges of 2,000 distinct GitHub-shaped tokens
// (2,000 workloads, as make bench sends), through a broker without and one with a sightings
// recorder that flushes to a real store every flushEvery of its exchanges (what the 10 s flush
// interval sees at make bench's saturation). It reports the process's CPU microseconds per exchange
// of each (getrusage around each exchange and each flush; the garbage collector's background work
// lands on whichever exchange it overlaps) and the difference in percent. The exchange here has
// no HTTP and no audit commit, so the recording's share is larger than in a server.
func BenchmarkExchangeRecordingSightings(b *testing.B) {
	ctx := context.Background()
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		b.Fatal(err)
	}
	jwks := httptest.NewServer(iss.Handler())
	b.Cleanup(jwks.Close)
	opts := connection.Options{DefaultAudience: "https://trustgate.example", AllowInsecureJWKS: true}
	spec, err := connection.Normalize(api.ConnectionInput{
		Name: "bench", ProviderType: api.ProviderGitHub,
		GitHub:  &api.GitHubSettings{OwnerID: "65", Owner: "octo-org", Audience: "https://github.com/octo-org"},
		JWKSURL: jwks.URL + "/.well-known/jwks.json",
	}, opts)
	if err != nil {
		b.Fatal(err)
	}
	st := storetest.New(b)
	now := time.Now().UTC()
	conn := &connection.Connection{Spec: spec, Status: api.StatusActive, Revision: 1, EverActivated: true, CreatedAt: now, UpdatedAt: now}
	if err := st.CreateConnection(ctx, conn, nil); err != nil {
		b.Fatal(err)
	}
	catalog, err := NewCatalog(ctx, st, opts)
	if err != nil {
		b.Fatal(err)
	}
	kek := make([]byte, signing.KEKSize)
	sk, err := signing.NewStoredKey(kek, now)
	if err != nil {
		b.Fatal(err)
	}
	keys, err := signing.NewKeyRing([]signing.StoredKey{sk}, kek)
	if err != nil {
		b.Fatal(err)
	}
	aw := audit.NewWriter(discardSink{}, audit.Options{})
	b.Cleanup(aw.Close)
	tokens := make([]string, 2000)
	for i := range tokens {
		run := strconv.Itoa(1_000_000 + i)
		if tokens[i], err = iss.Mint("github", map[string]any{"sub": "repo:octo-org/octo-repo:ref:refs/heads/main:run:" + run,
			"run_id": run, "jti": "bench-" + run}, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	m := audit.Meta{RequestID: "bench", RemoteAddr: "192.0.2.1"}

	newBroker := func(rec *sightings.Recorder) *Broker {
		return &Broker{Catalog: catalog, Keys: keys, Audit: aw, PublicURL: "https://trustgate.example", Sightings: rec,
			Verifier: jwtverify.NewVerifier(jwtverify.NewJWKSCache(jwtverify.JWKSOptions{AllowInsecure: true}), jwtverify.VerifierOptions{})}
	}
	rec := sightings.NewRecorder(st, sightings.Options{})
	brokers := [2]*Broker{newBroker(nil), newBroker(rec)} // without, with
	req := api.TokenRequest{GrantType: api.GrantTypeTokenExchange, SubjectTokenType: api.TokenTypeIDToken, Connection: "bench"}
	for _, br := range brokers {
		req.SubjectToken = tokens[0]
		if _, err := br.Exchange(ctx, req, m, nil); err != nil {
			b.Fatalf("the benchmark exchange must be granted: %v", err)
		}
	}
	// Blocks of 500 exchanges alternate between the two brokers, so that both meet the same
	// machine (other processes, frequency) and the difference is the recording.
	const block = 500
	var cpu [2]time.Duration
	var n [2]int
	i := 0
	for b.Loop() {
		v := (i / block) % 2
		start := processCPU()
		req.SubjectToken = tokens[n[v]%len(tokens)]
		if _, err := brokers[v].Exchange(ctx, req, m, nil); err != nil {
			b.Fatal(err)
		}
		n[v]++
		if v == 1 && n[v]%flushEvery == 0 {
			if err := rec.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		}
		cpu[v] += processCPU() - start
		i++
	}
	start := processCPU()
	if err := rec.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	cpu[1] += processCPU() - start
	without := float64(cpu[0].Nanoseconds()) / 1e3 / float64(max(n[0], 1))
	with := float64(cpu[1].Nanoseconds()) / 1e3 / float64(max(n[1], 1))
	b.ReportMetric(without, "cpu-µs/exchange-without")
	b.ReportMetric(with, "cpu-µs/exchange-with")
	b.ReportMetric(100*(with-without)/without, "%-recording")
}

// flushEvery: sightings.DefaultFlushEvery (10 s) at the ~7,000 exchanges/s of make bench's
// saturation on 2 cores (BENCHMARKS.md). A slower server flushes after fewer exchanges, each
// flush's cost then shared by fewer, but it is not short of CPU then.
const flushEvery = 70_000

// processCPU is the CPU time (user + system) this process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
