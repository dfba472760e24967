package e2e_test

import (
	"sync"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
)

func rotationConnection(t *testing.T, e *env, name string) *api.Connection {
	return e.createActive(t, api.ConnectionInput{Name: name, JWKSURL: e.iss.JWKSURL, Conditions: []api.Condition{
		{Claim: "iss", Operator: api.OpEquals, Value: ptr(e.iss.URL)},
		{Claim: "aud", Operator: api.OpEquals, Value: ptr(e.s.URL)},
	}})
}

// TestPrePublishedKeyIsAcceptedAtOnce: an issuer that publishes its next key before signing with
// it (as GitHub and Google do) is followed with no extra JWKS fetch.
func TestPrePublishedKeyIsAcceptedAtOnce(t *testing.T) {
	e := newEnv(t)
	conn := rotationConnection(t, e, "prepublished")
	next, err := e.iss.AddKey("RS256", 2048, "")
	if err != nil {
		t.Fatal(err)
	}
	mustGrant(t, e.exchange(t, conn.Name, e.iss.mint(t, "generic", map[string]any{"aud": e.s.URL})), time.Hour)
	fetches := e.iss.JWKSHits()
	mustGrant(t, e.exchange(t, conn.Name, e.iss.mintWith(t, devissuer.MintOptions{Shape: "generic",
		Claims: map[string]any{"aud": e.s.URL}, KID: next})), time.Hour)
	if got := e.iss.JWKSHits(); got != fetches {
		t.Errorf("the pre-published key cost %d more JWKS fetches, want 0", got-fetches)
	}
}

// TestRotatedKeyIsAcceptedWithoutRestart: the dev issuer rotates to a key the server has never
// seen; tokens under the new kid are accepted once the unknown-kid refresh runs (at most one fetch
// per 30 s cool-down, however many requests miss), with no restart, and old-kid tokens keep working.
// It waits out the cool-down, so it runs in parallel with the other tests.
func TestRotatedKeyIsAcceptedWithoutRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	conn := rotationConnection(t, e, "rotating")
	oldKID := e.iss.KID()
	mustGrant(t, e.exchange(t, conn.Name, e.iss.mint(t, "generic", map[string]any{"aud": e.s.URL})), time.Hour)
	start := time.Now()
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
	newToken := func() string { return e.iss.mint(t, "generic", map[string]any{"aud": e.s.URL}) }

	// A burst of unknown-kid requests right after the rotation.
	var wg sync.WaitGroup
	results := make([]tokenResult, 20)
	errs := make([]error, len(results))
	c := ctx(t)
	for i := range results {
		body := []byte(exchangeForm(conn.Name, newToken()).Encode())
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = e.sendToken(c, "application/x-www-form-urlencoded", body, nil)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	granted := 0
	for _, r := range results {
		switch {
		case r.Status == 200:
			granted++
		case r.Err.Error != api.ErrInvalidGrant:
			t.Errorf("burst: %s, want a grant or an invalid_grant signature refusal", r)
		}
	}
	if hits := e.iss.JWKSHits(); hits > 2 {
		t.Errorf("a burst of %d unknown-kid requests caused %d JWKS fetches in total, want at most 2", len(results), hits)
	}
	t.Logf("burst right after rotation: %d of %d granted, %d JWKS fetches", granted, len(results), e.iss.JWKSHits())

	// Without any restart, the new kid is accepted within the cool-down (plus slack).
	deadline := start.Add(45 * time.Second)
	for {
		r := e.exchange(t, conn.Name, newToken())
		if r.Status == 200 {
			mustGrant(t, r, time.Hour)
			t.Logf("new kid accepted %s after the first fetch, %d JWKS fetches in total", time.Since(start).Round(time.Second), e.iss.JWKSHits())
			break
		}
		mustRefuse(t, r, api.ErrInvalidGrant, "signature")
		if time.Now().After(deadline) {
			t.Fatalf("a token under the rotated kid is still refused %s after the first JWKS fetch", time.Since(start).Round(time.Second))
		}
		time.Sleep(time.Second)
	}
	if hits := e.iss.JWKSHits(); hits > 3 {
		t.Errorf("%d JWKS fetches, want at most one per 30 s cool-down (3)", hits)
	}
	// The old key is still published: its tokens are still accepted.
	mustGrant(t, e.exchange(t, conn.Name, e.iss.mintWith(t, devissuer.MintOptions{Shape: "generic",
		Claims: map[string]any{"aud": e.s.URL}, KID: oldKID})), time.Hour)
}
