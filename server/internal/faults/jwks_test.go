package faults_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
)

// TestJWKSEndpointGoneOrSlow breaks the CI issuer's JWKS endpoint under a running server: when it
// is gone, the keys cached from the last good fetch keep working (and an unknown kid is refused
// quickly); when it is slow, the exchange fails within the 5 s fetch timeout of CONTRACT.md §4 instead of
// hanging, and exchanges on other connections are not held up.
func TestJWKSEndpointGoneOrSlow(t *testing.T) {
	t.Parallel() // it waits out the 30 s refresh cool-down; the other parallel tests run meanwhile
	d := newDeployment(t, sqliteDSN(t))
	s := startServer(t, "jwks", d)
	gone := startIssuer(t)
	slow := startIssuer(t)
	createActive(t, s, gone.connectionInput("jwks-gone"))
	tok := gone.token(t)
	if r := exchange(s.URL, "jwks-gone", tok, nil); r.Status != http.StatusOK {
		t.Fatalf("exchange with the JWKS endpoint up: %s", r)
	}
	firstFetch := time.Now()

	t.Run("slow: the exchange fails within the fetch timeout and holds up no one else", func(t *testing.T) {
		slow.setMode(jwksSlow)
		createActive(t, s, slow.connectionInput("jwks-slow"))
		var (
			wg       sync.WaitGroup
			slowRes  exchangeResult
			stop     = make(chan struct{})
			maxOther time.Duration
			others   int
		)
		wg.Add(1)
		go func() {
			defer wg.Done()
			slowRes = exchange(s.URL, "jwks-slow", slow.token(t), nil)
			close(stop)
		}()
		// Meanwhile, exchanges on a connection whose keys are cached stay fast.
		for done := false; !done; {
			select {
			case <-stop:
				done = true
			default:
				r := exchange(s.URL, "jwks-gone", tok, nil)
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
		if slowRes.Status != http.StatusBadRequest || slowRes.OAuthError != api.ErrInvalidGrant {
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
		gone.setMode(jwksGone)
		if r := exchange(s.URL, "jwks-gone", tok, nil); r.Status != http.StatusOK {
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
		hits := gone.hits.Load()
		r := exchange(s.URL, "jwks-gone", unknown, nil)
		if gone.hits.Load() == hits {
			t.Errorf("a token with an unknown kid 30 s after the last fetch did not make the server refresh the JWKS")
		}
		if r.Status != http.StatusBadRequest || r.OAuthError != api.ErrInvalidGrant {
			t.Fatalf("exchange of a token with an unknown kid while the JWKS endpoint is down: %s, want 400 invalid_grant", r)
		}
		if r.Elapsed > 6*time.Second {
			t.Errorf("the refused exchange took %s", r.Elapsed)
		}
		if r := exchange(s.URL, "jwks-gone", tok, nil); r.Status != http.StatusOK {
			t.Fatalf("exchange with a cached kid after the failed refresh: %s, want 200 (cached keys are kept up to 24 h)", r)
		}
		// The endpoint disappears entirely (connection refused).
		gone.srv.Close()
		if r := exchange(s.URL, "jwks-gone", tok, nil); r.Status != http.StatusOK {
			t.Fatalf("exchange with the JWKS host gone: %s, want 200 from the cached keys", r)
		}
		summary(t, "jwks gone: cached keys kept working (503, then connection refused); an unknown kid forced a refresh that failed and was refused in %s; cached keys survived it",
			r.Elapsed.Round(time.Millisecond))
	})
}
