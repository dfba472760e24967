package faults_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"
)

// TestJWKSEndpointGoneOrSlow breaks the CI issuer's JWKS endpoint under a running server: when it
// is gone, the keys cached from the last good fetch keep working (and an unknown kid is refused
// quickly); when it is slow, the exchange fails within the 5 s fetch timeout of CONTRACT.md §4 instead of
// hanging, and exchanges on other connections are not held up.
func TestJWKSEndpointGoneOrSlow(t *testing.T) {
	t.Parallel() // it waits out the 30 s refresh cool-down; the other parallel tests run meanwhile
	d := newDeployment(t, testdb.SQLite(t))
	s := startServer(t, "jwks", d)
	gone := startIssuer(t)
	slow := startIssuer(t)
	s.admins(t).CreateActive(t, connectionInput(gone, "jwks-gone"))
	tok := ciToken(t, gone)
	if r := s.Exchange("jwks-gone", tok); r.Status != http.StatusOK {
		t.Fatalf("exchange with the JWKS endpoint up: %s", r)
	}
	firstFetch := time.Now()

	t.Run("slow: the exchange fails within the fetch timeout and holds up no one else", func(t *testing.T) {
		slow.SetDelay(10 * time.Second)
		s.admins(t).CreateActive(t, connectionInput(slow, "jwks-slow"))
		var (
			wg       sync.WaitGroup
			slowRes  testkit.TokenResult
			stop     = make(chan struct{})
			maxOther time.Duration
			others   int
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			slowRes = s.Exchange("jwks-slow", ciToken(t, slow))
			close(stop)
		}()
		// Meanwhile, exchanges on a connection whose keys are cached stay fast.
		for done := false; !done; {
			select {
			case <-stop:
				done = true
			default:
				r := s.Exchange("jwks-gone", tok)
				if r.Status != http.StatusOK {
					t.Errorf("cached-key exchange during the slow fetch: %s", r)
				}
				if r.Elapsed > maxOther {
					maxOther = r.Elapsed
				}
				others++
				time.Sleep(20 * time.Millisecond)
			}
		}
		wg.Wait()
		if slowRes.Status != http.StatusBadRequest || slowRes.Refusal.Error != api.ErrInvalidGrant {
			t.Errorf("exchange against a JWKS endpoint that sleeps 10 s: %s, want 400 invalid_grant", slowRes)
		}
		if slowRes.Elapsed > 7*time.Second {
			t.Errorf("the exchange against the slow JWKS took %s: the 5 s fetch timeout does not hold", slowRes.Elapsed)
		}
		if slowRes.Elapsed < 4*time.Second {
			t.Logf("note: the slow exchange ended after %s, before the 5 s timeout", slowRes.Elapsed)
		}
		if maxOther > time.Second {
			t.Errorf("a cached-key exchange took %s while another connection's JWKS fetch hung", maxOther)
		}
		summary(t, "jwks slow: endpoint sleeping 10 s → exchange refused after %s (5 s fetch timeout); %d exchanges on another connection meanwhile, slowest %s",
			slowRes.Elapsed.Round(time.Millisecond), others, maxOther.Round(time.Millisecond))
	})

	// The cache refreshes a URL at most once per 30 s, so the failed refresh can only be provoked
	// 30 s after the first fetch; the slow-endpoint case runs in the meantime.
	t.Run("gone: cached keys keep working and survive a failed refresh", func(t *testing.T) {
		gone.SetDown(true)
		if r := s.Exchange("jwks-gone", tok); r.Status != http.StatusOK {
			t.Fatalf("exchange with the JWKS endpoint answering 503: %s, want 200 from the cached keys", r)
		}
		if wait := time.Until(firstFetch.Add(31 * time.Second)); wait > 0 {
			t.Logf("waiting %s for the 30 s refresh cool-down of the JWKS cache", wait.Round(time.Second))
			time.Sleep(wait)
		}
		// A token signed by a key the cache has never seen makes the server refresh, which fails:
		// refused, quickly, and the cached keys survive the failed refresh.
		kid, err := gone.AddKey("RS256", 2048, "")
		if err != nil {
			t.Fatal(err)
		}
		unknown, err := gone.MintWith(devissuer.MintOptions{Shape: "generic", KID: kid, TTL: 30 * time.Minute,
			Claims: map[string]any{"iss": gone.URL, "aud": audience, "sub": "repo:acme/app"}})
		if err != nil {
			t.Fatal(err)
		}
		hits := gone.Hits()
		r := s.Exchange("jwks-gone", unknown)
		if gone.Hits() == hits {
			t.Errorf("a token with an unknown kid 30 s after the last fetch did not make the server refresh the JWKS")
		}
		if r.Status != http.StatusBadRequest || r.Refusal.Error != api.ErrInvalidGrant {
			t.Fatalf("exchange of a token with an unknown kid while the JWKS endpoint is down: %s, want 400 invalid_grant", r)
		}
		if r.Elapsed > 6*time.Second {
			t.Errorf("the refused exchange took %s", r.Elapsed)
		}
		if r := s.Exchange("jwks-gone", tok); r.Status != http.StatusOK {
			t.Fatalf("exchange with a cached kid after the failed refresh: %s, want 200 (cached keys are kept up to 24 h)", r)
		}
		// The endpoint disappears entirely (connection refused).
		gone.Close()
		if r := s.Exchange("jwks-gone", tok); r.Status != http.StatusOK {
			t.Fatalf("exchange with the JWKS host gone: %s, want 200 from the cached keys", r)
		}
		summary(t, "jwks gone: cached keys kept working (503, then connection refused); an unknown kid forced a refresh that failed and was refused in %s; cached keys survived it",
			r.Elapsed.Round(time.Millisecond))
	})
}

// TestJWKSRotationIsFollowedWithoutRestart measures what server/internal/e2e checks on an injected
// clock: the issuer rotates to a key the server has never seen; a burst of tokens under the new kid
// costs at most one JWKS fetch per 30 s cool-down, the new kid is accepted once the cool-down has
// passed (measured), with no restart, and old-kid tokens keep working.
func TestJWKSRotationIsFollowedWithoutRestart(t *testing.T) {
	t.Parallel() // it waits out the 30 s refresh cool-down; the other parallel tests run meanwhile
	d := newDeployment(t, testdb.SQLite(t))
	s := startServer(t, "rotation", d)
	iss := startIssuer(t)
	s.admins(t).CreateActive(t, connectionInput(iss, "rotating"))
	oldKID := iss.KID()
	if r := s.Exchange("rotating", ciToken(t, iss)); r.Status != http.StatusOK {
		t.Fatalf("exchange before the rotation: %s", r)
	}
	start := time.Now()
	if got := iss.JWKSHits(); got != 1 {
		t.Fatalf("%d JWKS fetches for the first exchange, want 1", got)
	}
	if _, err := iss.Rotate(); err != nil {
		t.Fatal(err)
	}

	// A burst of unknown-kid requests right after the rotation.
	const burst = 20
	results := make([]testkit.TokenResult, burst)
	var wg sync.WaitGroup
	for i := range results {
		tok := ciToken(t, iss)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.Exchange("rotating", tok)
		}()
	}
	wg.Wait()
	granted := 0
	for _, r := range results {
		switch {
		case r.Status == http.StatusOK:
			granted++
		case r.Refusal.Error != api.ErrInvalidGrant:
			t.Errorf("burst: %s, want a grant or an invalid_grant refusal", r)
		}
	}
	if hits := iss.JWKSHits(); hits > 2 {
		t.Errorf("a burst of %d unknown-kid requests caused %d JWKS fetches in total, want at most 2", burst, hits)
	}

	// Without any restart, the new kid is accepted within the cool-down (plus slack).
	var accepted time.Duration
	for {
		r := s.Exchange("rotating", ciToken(t, iss))
		if r.Status == http.StatusOK {
			accepted = time.Since(start)
			break
		}
		if r.Status != http.StatusBadRequest || r.Refusal.Error != api.ErrInvalidGrant {
			t.Fatalf("exchange under the rotated kid: %s, want a grant or an invalid_grant refusal", r)
		}
		if time.Since(start) > 45*time.Second {
			t.Fatalf("a token under the rotated kid is still refused %s after the first JWKS fetch", time.Since(start).Round(time.Second))
		}
		time.Sleep(time.Second)
	}
	if hits := iss.JWKSHits(); hits > 3 {
		t.Errorf("%d JWKS fetches, want at most one per 30 s cool-down (3)", hits)
	}
	// The old key is still published: its tokens are still accepted.
	old, err := iss.MintWith(devissuer.MintOptions{Shape: "generic", KID: oldKID, TTL: 30 * time.Minute,
		Claims: map[string]any{"iss": iss.URL, "aud": audience, "sub": "repo:acme/app"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Exchange("rotating", old); r.Status != http.StatusOK {
		t.Errorf("an old-kid token after the rotation: %s, want 200", r)
	}
	summary(t, "jwks rotation: %d of %d unknown-kid requests right after the rotation granted; new kid accepted %s after the first fetch (30 s cool-down), %d JWKS fetches in all, no restart; old kid still accepted",
		granted, burst, accepted.Round(time.Millisecond), iss.JWKSHits())
}
