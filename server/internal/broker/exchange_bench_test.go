package broker

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/audit"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/jwtverify"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

// discardSink takes audit batches and keeps nothing: the benchmark measures the broker, not a
// database commit.
type discardSink struct{}

func (discardSink) AppendAudit(context.Context, []api.AuditEvent) error { return nil }
func (discardSink) AuditEventStored(context.Context, string, string, int64) (bool, error) {
	return false, nil
}

// AppendAuditOnce takes single-use records and calls them all new, as a store seeing each token
// for the first time would.
func (discardSink) AppendAuditOnce(_ context.Context, recs []connection.SingleUse, build func([]bool) []api.AuditEvent) error {
	fresh := make([]bool, len(recs))
	for i := range fresh {
		fresh[i] = true
	}
	_ = build(fresh)
	return nil
}

// BenchmarkExchangeGranted is one granted token exchange through the broker: a GitHub-shaped RS256
// token from the dev issuer (JWKS cached) against an active github-preset connection, an ES256
// access token minted, and the audit event handed to the group-commit writer (over a sink that
// stores nothing). Most of its time is the RSA verification (BenchmarkVerifyGitHubToken in
// jwtverify); what the broker adds shows in allocs/op.
func BenchmarkExchangeGranted(b *testing.B) { benchmarkExchange(b, func(*api.ConnectionInput) {}) }

// BenchmarkExchangeGrantedSingleUse is BenchmarkExchangeGranted on a single_use connection: what
// the single-use key, its record and the batch hook add to an exchange's CPU (the database's side
// is measured by make bench with --single-use).
func BenchmarkExchangeGrantedSingleUse(b *testing.B) {
	benchmarkExchange(b, func(in *api.ConnectionInput) { in.SingleUse = true })
}

// BenchmarkExchangeGrantedWithClaimsAndAudiences is BenchmarkExchangeGranted with four
// claim_mappings and two token_audience entries.
func BenchmarkExchangeGrantedWithClaimsAndAudiences(b *testing.B) {
	benchmarkExchange(b, func(in *api.ConnectionInput) {
		in.ClaimMappings = map[string]string{"repository": "repository", "run": "run_number", "ref": "ref", "env": "environment"}
		in.TokenAudience = []string{"https://deploy.example", "https://artifacts.example"}
	})
}

func benchmarkExchange(b *testing.B, configure func(*api.ConnectionInput)) {
	ctx := context.Background()
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		b.Fatal(err)
	}
	jwks := httptest.NewServer(iss.Handler())
	b.Cleanup(jwks.Close)

	opts := connection.Options{DefaultAudience: "https://trustgate.example", AllowInsecureJWKS: true}
	in := api.ConnectionInput{
		Name: "bench", ProviderType: api.ProviderGitHub,
		GitHub:  &api.GitHubSettings{OwnerID: "65", Owner: "octo-org", Ref: "refs/heads/main", Audience: "https://github.com/octo-org"},
		JWKSURL: jwks.URL + "/.well-known/jwks.json",
	}
	configure(&in)
	spec, err := connection.Normalize(in, opts)
	if err != nil {
		b.Fatal(err)
	}
	st := storetest.New(b)
	now := time.Now().UTC()
	conn := &connection.Connection{Spec: spec, Status: api.StatusActive, Revision: 1, EverActivated: true,
		CreatedBy: "d", UpdatedBy: "d", ConfigChangedBy: "d", CreatedAt: now, UpdatedAt: now}
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
	br := &Broker{
		Catalog:   catalog,
		Verifier:  jwtverify.NewVerifier(jwtverify.NewJWKSCache(jwtverify.JWKSOptions{AllowInsecure: true}), jwtverify.VerifierOptions{}),
		Keys:      keys,
		Audit:     aw,
		PublicURL: "https://trustgate.example",
	}

	tok, err := iss.Mint("github", nil, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	req := api.TokenRequest{GrantType: api.GrantTypeTokenExchange, SubjectToken: tok,
		SubjectTokenType: api.TokenTypeIDToken, Connection: "bench"}
	m := audit.Meta{RequestID: "bench", RemoteAddr: "192.0.2.1"}
	if _, err := br.Exchange(ctx, req, m, nil); err != nil {
		b.Fatalf("the benchmark exchange must be granted: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := br.Exchange(ctx, req, m, nil); err != nil {
			b.Fatal(err)
		}
	}
}
