package e2e_test

import (
	"sync"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/jwtverify"
)

// TestPrePublishedKeyIsAcceptedAtOnce: an issuer that publishes its next key before signing with
// it (as GitHub and Google do) is followed with no extra JWKS fetch.
func TestPrePublishedKeyIsAcceptedAtOnce(t *testing.T) {
	e := newEnv(t)
	conn := e.CreateActive(t, e.generic("prepublished"))
	next, err := e.iss.AddKey("RS256", 2048, "")
	if err != nil {
		t.Fatal(err)
	}
	testkit.MustGrant(t, e.Exchange(conn.Name, e.token(t, nil)), time.Hour)
	fetches := e.iss.JWKSHits()
	testkit.MustGrant(t, e.Exchange(conn.Name, e.iss.MustMintWith(t, devissuer.MintOptions{Shape: "generic",
		Claims: map[string]any{"aud": e.URL}, KID: next})), time.Hour)
	if got := e.iss.JWKSHits(); got != fetches {
		t.Errorf("the pre-published key cost %d more JWKS fetches, want 0", got-fetches)
	}
}

// TestRotatedKeyIsAcceptedAfterTheCooldownWithoutRestart: the issuer rotates to a key the server
// has never seen. Tokens under the new kid are refused until the unknown-kid refresh may run (one
// fetch per URL per 30 s cool-down, however many requests miss), then accepted with no restart,
// and old-kid tokens keep working. The server and the issuer share a clock the test moves, so
// nothing waits; server/internal/faults measures the same against the real binary.
func TestRotatedKeyIsAcceptedAfterTheCooldownWithoutRestart(t *testing.T) {
	clock := ciissuer.NewClock(time.Now())
	e := &env{Server: testkit.Start(t, testkit.WithClock(clock.Now)), iss: ciissuer.Start(t, devissuer.Options{Now: clock.Now})}
	conn := e.CreateActive(t, e.generic("rotating"))
	oldKID := e.iss.KID()
	testkit.MustGrant(t, e.Exchange(conn.Name, e.token(t, nil)), time.Hour)
	if got := e.iss.JWKSHits(); got != 1 {
		t.Fatalf("%d JWKS fetches for the first exchange, want 1", got)
	}

	newKID, err := e.iss.Rotate()
	if err != nil {
		t.Fatal(err)
	}
	if newKID == oldKID {
		t.Fatal("Rotate kept the kid")
	}
	// burst sends n exchanges of new-kid tokens at once.
	burst := func(n int) []testkit.TokenResult {
		tokens := make([]string, n)
		for i := range tokens {
			tokens[i] = e.token(t, nil)
		}
		results := make([]testkit.TokenResult, n)
		var wg sync.WaitGroup
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = e.Exchange(conn.Name, tokens[i])
			}()
		}
		wg.Wait()
		return results
	}

	// Right after the rotation the last fetch is within the cool-down: the whole burst is refused
	// and none of it reaches the issuer.
	for _, r := range burst(20) {
		testkit.MustRefuse(t, r, api.ErrInvalidGrant, "signature")
	}
	clock.Advance(jwtverify.DefaultRefreshCooldown - time.Second)
	testkit.MustRefuse(t, e.Exchange(conn.Name, e.token(t, nil)), api.ErrInvalidGrant, "signature")
	if got := e.iss.JWKSHits(); got != 1 {
		t.Errorf("%d JWKS fetches within the 30 s cool-down, want still 1", got)
	}

	// Past the cool-down, without any restart, a burst under the new kid is granted on one fetch.
	clock.Advance(2 * time.Second)
	for _, r := range burst(20) {
		testkit.MustGrant(t, r, time.Hour)
	}
	if got := e.iss.JWKSHits(); got != 2 {
		t.Errorf("%d JWKS fetches after the cool-down, want 2 (one refresh for the whole burst)", got)
	}
	// The old key is still published: its tokens are still accepted, with no further fetch.
	testkit.MustGrant(t, e.Exchange(conn.Name, e.iss.MustMintWith(t, devissuer.MintOptions{Shape: "generic",
		Claims: map[string]any{"aud": e.URL}, KID: oldKID})), time.Hour)
	if got := e.iss.JWKSHits(); got != 2 {
		t.Errorf("%d JWKS fetches after an old-kid exchange, want still 2", got)
	}
}
