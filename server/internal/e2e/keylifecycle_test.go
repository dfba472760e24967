package e2e_test

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
	"github.com/trustgate/terraform-provider-trustgate/server/app"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
)

// The key lifecycle of CONTRACT.md §2 and revocation of §3, across two replicas on one database
// (PostgreSQL in make test's second pass) with one clock the test moves. Replicas poll when the
// test says (Refresh), so nothing waits; server/internal/faults measures the real polls.

// replicas are two servers of one deployment: one database, KEK, public URL and clock.
type replicas struct {
	a, b  *testkit.Server
	iss   *ciissuer.Issuer
	clock *ciissuer.Clock
}

func newReplicas(t *testing.T) *replicas {
	t.Helper()
	clock := ciissuer.NewClock(time.Now().Truncate(time.Second))
	manual := func(c *app.Config) { c.CatalogPoll = time.Hour } // polls happen when the test says
	r := &replicas{clock: clock, iss: ciissuer.Start(t, devissuer.Options{Now: clock.Now})}
	r.a = testkit.Start(t, testkit.WithClock(clock.Now), testkit.WithConfig(manual))
	r.b = testkit.StartOn(t, r.a.DSN, testkit.WithClock(clock.Now), testkit.WithConfig(func(c *app.Config) {
		manual(c)
		c.KEK, c.PublicURL = r.a.App.Config.KEK, r.a.URL
	}))
	return r
}

// poll is every replica's next poll: connections, signing keys, revocations. The two replicas
// poll at the same moment, racing as real ones do.
func (r *replicas) poll(t *testing.T) {
	t.Helper()
	var wg sync.WaitGroup
	for _, s := range []*testkit.Server{r.a, r.b} {
		wg.Go(func() {
			for _, refresh := range []func() error{
				func() error { return s.App.Catalog.Refresh(t.Context()) },
				func() error { return s.App.Keys.Refresh(t.Context()) },
				func() error { return s.App.Revocations.Refresh(t.Context()) },
			} {
				if err := refresh(); err != nil {
					t.Errorf("poll: %v", err)
				}
			}
		})
	}
	wg.Wait()
}

// jwks is what both replicas publish, which must be the same bytes; returned as kids in order.
func (r *replicas) jwks(t *testing.T, step string) []string {
	t.Helper()
	ja, jb := r.a.JWKS(t), r.b.JWKS(t)
	if string(ja) != string(jb) {
		t.Fatalf("%s: the replicas publish different JWKS:\n%s\n%s", step, ja, jb)
	}
	return testkit.KIDsInOrder(t, ja)
}

// verifyAt checks an access token as a resource server would at now: ES256 against the JWKS, the
// deployment's issuer and audience, exp.
func verifyAt(jwks []byte, token, issuer string, now time.Time) error {
	kf, err := keyfunc.NewJWKSetJSON(jwks)
	if err != nil {
		return err
	}
	_, err = jwt.Parse(token, kf.Keyfunc, jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(issuer),
		jwt.WithAudience(issuer), jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return now }))
	return err
}

// metric reads one unlabelled gauge from a server's /metrics.
func metric(t *testing.T, s *testkit.Server, name string) float64 {
	t.Helper()
	body := s.Do(t, testkit.Request{Method: http.MethodGet, Path: "/metrics"}).WantStatus(t, http.StatusOK).Body
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	h, _, _ := testkit.Segments(t, token)
	kid, _ := h["kid"].(string)
	return kid
}

// connection creates an active generic connection with 24 h tokens (the longest: what a retired
// key's publication must outlast).
func (r *replicas) connection(t *testing.T, name string) *api.Connection {
	t.Helper()
	in := testkit.GenericInput(name, r.iss.URL, r.iss.JWKSURL, r.a.URL)
	in.TokenTTL = &api.TokenTTL{Amount: 24, Unit: api.UnitHours}
	c := r.a.CreateActive(t, in)
	r.poll(t)
	return c
}

func (r *replicas) grant(t *testing.T, s *testkit.Server, conn *api.Connection) string {
	t.Helper()
	tok := r.iss.MustMint(t, "generic", map[string]any{"aud": r.a.URL})
	return testkit.MustGrant(t, s.Exchange(conn.Name, tok), 24*time.Hour)
}

// TestSigningKeyRotationAcrossTwoReplicas follows one scheduled rotation step by step: the next
// key is created once although both replicas find it due at the same poll; it is published an
// hour before it signs; both replicas sign with the same key at every moment (the next one from
// its activation, even before their next poll); the retired key stays published until the last
// token it signed has expired, then disappears; both replicas publish identical JWKS throughout.
func TestSigningKeyRotationAcrossTwoReplicas(t *testing.T) {
	r := newReplicas(t)
	conn := r.connection(t, "rotating-keys")
	k1 := r.a.App.Keys.KID()
	if got := r.jwks(t, "start"); !slices.Equal(got, []string{k1}) {
		t.Fatalf("at start the JWKS is %v, want [%s]", got, k1)
	}
	start := r.clock.Now()

	r.clock.Advance(signing.DefaultRotation - signing.PublishLead - time.Second)
	r.poll(t)
	if got := r.jwks(t, "a second before the next key is due"); len(got) != 1 {
		t.Fatalf("the next key exists a second early: %v", got)
	}
	r.clock.Advance(time.Second)
	r.poll(t) // both replicas find the next key due and race to create it
	keys, err := r.a.App.Store.SigningKeys(t.Context())
	if err != nil || len(keys) != 2 {
		t.Fatalf("%d keys stored after the race, want 2 (%v)", len(keys), err)
	}
	k2 := keys[1].KID
	if got := r.jwks(t, "next key published"); !slices.Equal(got, []string{k1, k2}) {
		t.Fatalf("JWKS %v, want [%s %s]", got, k1, k2)
	}
	activation := start.Add(signing.DefaultRotation)
	if !keys[1].ActivatesAt.Equal(activation) || keys[1].ActivatesAt.Sub(keys[1].CreatedAt) < signing.PublishLead {
		t.Fatalf("k2 created %s, signs from %s: want published at least %s before it signs, at %s",
			keys[1].CreatedAt, keys[1].ActivatesAt, signing.PublishLead, activation)
	}
	// The gauges say the same: k1 has signed for the period less the lead, k2 signs in an hour.
	for name, want := range map[string]float64{
		"trustgate_signing_key_age_seconds":           (signing.DefaultRotation - signing.PublishLead).Seconds(),
		"trustgate_signing_key_next_rotation_seconds": signing.PublishLead.Seconds(),
		"trustgate_signing_keys_published":            2,
	} {
		if got := metric(t, r.b, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if evs := testkit.AuditEvents(t, r.a.Auditor, apiclient.AuditOptions{Action: api.ActionKeyRotate}); len(evs) != 1 ||
		evs[0].Detail["kid"] != k2 || evs[0].Detail["mode"] != signing.ModeScheduled {
		t.Errorf("key.rotate events %+v, want one scheduled rotation to %s", evs, k2)
	}

	r.clock.Advance(signing.PublishLead - time.Second)
	last := r.grant(t, r.b, conn) // k1's last token, valid for 24 h
	if kid := kidOf(t, last); kid != k1 {
		t.Fatalf("a second before k2's activation the token is signed by %s, want %s", kid, k1)
	}
	r.clock.Advance(time.Second) // k2's activation; no replica has polled since
	for _, s := range []*testkit.Server{r.a, r.b} {
		if kid := kidOf(t, r.grant(t, s, conn)); kid != k2 {
			t.Errorf("at k2's activation a replica signs with %s, want %s", kid, k2)
		}
	}
	r.poll(t)
	if got := r.jwks(t, "k2 signs"); !slices.Equal(got, []string{k1, k2}) {
		t.Fatalf("JWKS %v after k2's activation, want k1 still published", got)
	}

	// k1 published until its last token has expired: its last signing time + 24 h + 60 s.
	r.clock.Advance(signing.MaxTokenLifetime + signing.Leeway - time.Second)
	r.poll(t)
	jwks := r.a.JWKS(t)
	if got := r.jwks(t, "a second before k1 retires"); !slices.Equal(got, []string{k1, k2}) {
		t.Fatalf("JWKS %v a second before k1's tokens have all expired", got)
	}
	if err := verifyAt(jwks, last, r.a.URL, activation.Add(signing.MaxTokenLifetime-2*time.Second)); err != nil {
		t.Errorf("k1's last token does not verify against the JWKS just before it expires: %v", err)
	}
	r.clock.Advance(time.Second)
	r.poll(t)
	if got := r.jwks(t, "k1 retired"); !slices.Equal(got, []string{k2}) {
		t.Fatalf("JWKS %v once every k1 token has expired, want [%s]", got, k2)
	}
	keys, _ = r.a.App.Store.SigningKeys(t.Context())
	if len(keys[0].SealedPrivate) != 0 || len(keys[1].SealedPrivate) == 0 {
		t.Errorf("private parts stored: k1 %d bytes (want erased), k2 %d bytes", len(keys[0].SealedPrivate), len(keys[1].SealedPrivate))
	}
}

// TestCompromisedKeyEndToEnd: `trustgate keys rotate-signing --compromised` (signing.Rotate on the
// database, as the command runs it) withdraws the keys; at their next poll both replicas refuse
// every token those keys signed (introspection inactive, whoami 401, not in the JWKS) and sign
// with the new key, whose tokens verify everywhere.
func TestCompromisedKeyEndToEnd(t *testing.T) {
	r := newReplicas(t)
	conn := r.connection(t, "compromised-keys")
	old := r.grant(t, r.a, conn)
	oldKID := kidOf(t, old)

	ks, closeKS := app.KeyStore(r.a.App.Store)
	defer closeKS()
	rot, err := signing.Rotate(t.Context(), ks, signing.KEKs{Current: r.a.App.Config.KEK}, true, "security-oncall", r.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rot.Withdrawn, []string{oldKID}) {
		t.Fatalf("withdrawn %v, want [%s]", rot.Withdrawn, oldKID)
	}
	r.poll(t)
	for name, s := range map[string]*testkit.Server{"a": r.a, "b": r.b} {
		if in, err := s.Auditor.Introspect(t.Context(), old); err != nil || in.Active {
			t.Errorf("replica %s introspects a withdrawn key's token as %+v, %v", name, in, err)
		}
		p := s.Do(t, testkit.Request{Method: http.MethodGet, Path: "/v1/whoami", Key: old}).Problem(t, http.StatusUnauthorized)
		if !strings.Contains(p.Detail, "withdrawn") {
			t.Errorf("replica %s: whoami says %q, want it to name the withdrawal", name, p.Detail)
		}
	}
	if got := r.jwks(t, "after the compromise"); !slices.Equal(got, []string{rot.KID}) {
		t.Fatalf("JWKS %v after the compromise, want only [%s]", got, rot.KID)
	}
	fresh := r.grant(t, r.b, conn)
	if kidOf(t, fresh) != rot.KID {
		t.Fatalf("a new token is signed by %s, want %s", kidOf(t, fresh), rot.KID)
	}
	if err := verifyAt(r.a.JWKS(t), fresh, r.a.URL, r.clock.Now()); err != nil {
		t.Errorf("the new token does not verify against the other replica's JWKS: %v", err)
	}
	if who, err := r.a.Client(t, fresh).Whoami(t.Context()); err != nil || who.Kind != "workload" {
		t.Errorf("whoami with the new token on the other replica: %+v, %v", who, err)
	}
	evs := testkit.AuditEvents(t, r.a.Auditor, apiclient.AuditOptions{Action: api.ActionKeyRotate})
	if len(evs) != 1 || evs[0].Actor != "security-oncall" || evs[0].Detail["mode"] != signing.ModeCompromised {
		t.Errorf("key.rotate events %+v, want security-oncall's compromise rotation", evs)
	}
}

// TestRevocationReachesTheOtherReplicaAtItsNextPoll: a CI job revokes its token through one
// replica; that replica refuses it at once, the other at its next poll; the record is dropped
// once the token has expired.
func TestRevocationReachesTheOtherReplicaAtItsNextPoll(t *testing.T) {
	r := newReplicas(t)
	conn := r.connection(t, "revocable")
	tok := r.grant(t, r.a, conn)
	keep := r.grant(t, r.a, conn)

	if err := r.a.Client(t, tok).Revoke(t.Context(), tok); err != nil {
		t.Fatalf("the token revoking itself: %v", err)
	}
	whoami := func(s *testkit.Server, token string) int {
		_, err := s.Client(t, token).Whoami(t.Context())
		return apiclient.StatusCode(err)
	}
	if got := whoami(r.a, tok); got != http.StatusUnauthorized {
		t.Errorf("the replica that took the revocation answers whoami %d, want 401", got)
	}
	if got := whoami(r.b, tok); got != 0 {
		t.Fatalf("test setup: the other replica refused (%d) before its poll, so the poll is not what this test shows", got)
	}
	r.poll(t)
	if got := whoami(r.b, tok); got != http.StatusUnauthorized {
		t.Errorf("after its poll the other replica answers whoami %d, want 401", got)
	}
	if in, err := r.b.Auditor.Introspect(t.Context(), tok); err != nil || in.Active {
		t.Errorf("the other replica introspects the revoked token as %+v, %v", in, err)
	}
	if got := whoami(r.b, keep); got != 0 {
		t.Errorf("another token of the same job stopped working (%d)", got)
	}

	// The record lives as long as the token, then goes from the database and from memory at the
	// next purge (every minute).
	since := func() int {
		rs, err := r.a.App.Store.RevocationsSince(t.Context(), 0, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	if n := since(); n != 1 {
		t.Fatalf("%d revocation records, want 1", n)
	}
	r.clock.Advance(24*time.Hour - time.Second)
	r.poll(t)
	if n := since(); n != 1 {
		t.Errorf("the record was dropped a second before the token expires")
	}
	r.clock.Advance(time.Second + time.Minute)
	r.poll(t)
	if n := since(); n != 0 {
		t.Errorf("%d revocation records a minute after the token expired, want 0", n)
	}
	_, payload, _ := testkit.Segments(t, tok)
	if jti, _ := payload["jti"].(string); jti == "" || r.b.App.Revocations.Revoked(jti) {
		t.Errorf("the other replica still holds the expired token's revocation (jti %q)", jti)
	}
}
