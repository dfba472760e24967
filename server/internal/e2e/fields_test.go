package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/ciclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"
	"github.com/trustgate/terraform-provider-trustgate/server/app"
)

// Issue 13: the connection fields of CONTRACT.md v2 over HTTP, with real keys, a real JWKS or
// discovery document, and tokens that must pass and tokens that must fail.

// mustRefuseAt refuses r as kind and checks that the audit event names the failed check.
func (e *env) mustRefuseAt(t *testing.T, conn *api.Connection, r testkit.TokenResult, code, kind, check string) api.AuditEvent {
	t.Helper()
	testkit.MustRefuse(t, r, code, kind)
	ev, ok := e.ExchangeEvents(t, conn.ID)[r.RequestID]
	if !ok {
		t.Fatalf("no audit event for the refused request %s", r.RequestID)
	}
	if ev.Outcome != api.OutcomeDenied || (check != "" && ev.Detail["check"] != check) {
		t.Fatalf("audit event %s/%s detail %v; want denied at check %q", ev.Outcome, ev.Reason, ev.Detail, check)
	}
	return ev
}

func TestNotEqualsAndGlobOverHTTP(t *testing.T) {
	e := newEnv(t)
	in := e.generic("release-jobs")
	in.Conditions = append(in.Conditions,
		api.Condition{Claim: "ref", Operator: api.OpGlob, Value: ptr("refs/heads/release/*")},
		api.Condition{Claim: "environment", Operator: api.OpNotEquals, Value: ptr("dev")})
	conn := e.CreateActive(t, in)
	ttl := ttlOf(&conn.TokenTTL)

	testkit.MustGrant(t, e.Exchange(conn.Name, e.token(t, map[string]any{"ref": "refs/heads/release/1.2", "environment": "prod"})), ttl)
	// An array claim: glob matches when any element does; not_equals needs every element to differ.
	testkit.MustGrant(t, e.Exchange(conn.Name, e.token(t, map[string]any{"ref": []any{"x", "refs/heads/release/2"}, "environment": []any{"prod", "qa"}})), ttl)

	for name, tc := range map[string]struct {
		claims map[string]any
		check  string
	}{
		"glob does not cross /":          {map[string]any{"ref": "refs/heads/release/1.2/hotfix", "environment": "prod"}, "condition: ref glob"},
		"glob needs a string":            {map[string]any{"ref": 12, "environment": "prod"}, "condition: ref glob"},
		"not_equals":                     {map[string]any{"ref": "refs/heads/release/1", "environment": "dev"}, "condition: environment not_equals"},
		"not_equals on an array element": {map[string]any{"ref": "refs/heads/release/1", "environment": []any{"prod", "dev"}}, "condition: environment not_equals"},
		"not_equals on a missing claim":  {map[string]any{"ref": "refs/heads/release/1"}, "condition: environment not_equals"},
	} {
		t.Run(name, func(t *testing.T) {
			e.mustRefuseAt(t, conn, e.Exchange(conn.Name, e.token(t, tc.claims)), api.ErrInvalidGrant, "condition", tc.check)
		})
	}
}

// claim_mappings: names and pointers, scalars and scalar arrays copied with their JSON type,
// objects and arrays holding objects never, missing claims left out; the same claims come back
// from whoami and introspection.
func TestClaimMappingsOverHTTP(t *testing.T) {
	e := newEnv(t)
	in := e.generic("mapped")
	in.ClaimMappings = map[string]string{
		"repository": "repository", "run": "/run/number", "attempt": "/run/attempts/1", "protected": "protected",
		"groups": "groups", "first_group": "/groups/0", "labels": "labels", "project": "project",
		"missing": "nope", "missing_ptr": "/run/nope",
	}
	conn := e.CreateActive(t, in)
	tok := e.token(t, map[string]any{
		"repository": "acme/app", "run": map[string]any{"number": 9007199254740993, "attempts": []any{1, 2}},
		"protected": false, "groups": []any{"admins", "devs"}, "labels": []any{"a", map[string]any{"x": 1}},
		"project": map[string]any{"id": 7},
	})
	access := testkit.MustGrant(t, e.Exchange(conn.Name, tok), ttlOf(&conn.TokenTTL))

	want := map[string]any{
		"repository": "acme/app", "run": json.Number("9007199254740993"), "attempt": json.Number("2"), "protected": false,
		"groups": []any{"admins", "devs"}, "first_group": "admins",
	}
	got := e.VerifyAccess(t, access).Claims
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("claims in the access token %#v\nwant %#v", got, want)
	}
	// The raw JSON types: the number is a JSON number with its exact digits, not a string.
	_, payload, _ := testkit.Segments(t, access)
	raw, _ := json.Marshal(payload["claims"])
	if !bytes.Contains(raw, []byte(`"run":9007199254740993`)) || !bytes.Contains(raw, []byte(`"protected":false`)) {
		t.Errorf("claims JSON %s does not keep the JSON types", raw)
	}

	// whoami and introspection, read raw so that the number's digits are not rounded by a client.
	w, _ := json.Marshal(want)
	for name, req := range map[string]testkit.Request{
		"whoami":        {Method: http.MethodGet, Path: "/v1/whoami", Key: access},
		"introspection": {Method: http.MethodPost, Path: "/v1/introspect", Key: e.AuditorKey, Body: "token=" + access, ContentType: "application/x-www-form-urlencoded"},
	} {
		var body struct {
			Active *bool           `json:"active"`
			Claims json.RawMessage `json:"claims"`
		}
		e.Do(t, req).WantStatus(t, http.StatusOK).Decode(t, &body)
		if !bytes.Equal(body.Claims, w) || (body.Active != nil && !*body.Active) {
			t.Errorf("%s claims %s, want %s", name, body.Claims, w)
		}
	}

	// A connection without mappings issues no claims member, and whoami shows none.
	plain := e.CreateActive(t, e.generic("unmapped"))
	access = testkit.MustGrant(t, e.Exchange(plain.Name, e.token(t, map[string]any{"repository": "acme/app"})), time.Hour)
	if _, payload, _ := testkit.Segments(t, access); payload["claims"] != nil {
		t.Errorf("an unmapped connection's token carries claims %v", payload["claims"])
	}
}

// token_audience and the RFC 8693 audience parameter, through the token endpoint (form and JSON)
// and through trustgate exchange --token-audience.
func TestTokenAudienceOverHTTP(t *testing.T) {
	e := newEnv(t)
	const deploy, artifacts = "https://deploy.example", "https://artifacts.example"
	in := e.generic("audiences")
	in.TokenAudience = []string{deploy, artifacts}
	conn := e.CreateActive(t, in)
	ttl := ttlOf(&conn.TokenTTL)

	t.Run("without the parameter: every listed audience", func(t *testing.T) {
		access := testkit.MustGrant(t, e.Exchange(conn.Name, e.token(t, nil)), ttl)
		c := e.VerifyAccessFor(t, access, artifacts)
		if !reflect.DeepEqual([]string(c.Audience), []string{deploy, artifacts}) {
			t.Fatalf("aud %v, want both token_audience entries", c.Audience)
		}
		in, err := e.Auditor.Introspect(t.Context(), access)
		if err != nil || !in.Active || !reflect.DeepEqual([]string(in.Aud), []string{deploy, artifacts}) {
			t.Fatalf("introspection %+v, %v; want active with both audiences", in, err)
		}
		if _, err := e.Client(t, access).Whoami(t.Context()); err != nil {
			t.Fatalf("whoami of a token for another audience: %v", err)
		}
	})
	t.Run("with the parameter: that audience alone", func(t *testing.T) {
		for name, r := range map[string]testkit.TokenResult{
			"form": e.ExchangeAudience(conn.Name, e.token(t, nil), deploy),
			"json": e.PostToken("application/json", mustJSON(t, api.TokenRequest{GrantType: api.GrantTypeTokenExchange,
				SubjectToken: e.token(t, nil), SubjectTokenType: api.TokenTypeJWT, Connection: conn.Name, Audience: deploy}), nil),
		} {
			access := testkit.MustGrant(t, r, ttl)
			_, payload, _ := testkit.Segments(t, access)
			if payload["aud"] != deploy {
				t.Errorf("%s: aud %#v, want the string %q", name, payload["aud"], deploy)
			}
			if in, err := e.Auditor.Introspect(t.Context(), access); err != nil || !in.Active {
				t.Errorf("%s: introspection %+v %v", name, in, err)
			}
		}
	})
	t.Run("an audience the connection does not issue", func(t *testing.T) {
		for _, aud := range []string{"https://evil.example", e.URL, "https://DEPLOY.example"} {
			ev := e.mustRefuseAt(t, conn, e.ExchangeAudience(conn.Name, e.token(t, nil), aud), api.ErrInvalidTarget, "audience", "audience")
			if ev.Detail["actual"] != aud {
				t.Errorf("audit detail %v does not name the requested audience", ev.Detail)
			}
		}
		r := e.PostForm(map[string][]string{"grant_type": {api.GrantTypeTokenExchange}, "subject_token": {e.token(t, nil)},
			"subject_token_type": {api.TokenTypeJWT}, "connection": {conn.Name}, "audience": {deploy, artifacts}}, nil)
		testkit.MustRefuse(t, r, api.ErrInvalidRequest, "audience is repeated")
	})
	t.Run("without token_audience the public URL is the one audience", func(t *testing.T) {
		plain := e.CreateActive(t, e.generic("public-audience"))
		access := testkit.MustGrant(t, e.ExchangeAudience(plain.Name, e.token(t, nil), e.URL), time.Hour)
		e.VerifyAccess(t, access)
		e.mustRefuseAt(t, plain, e.ExchangeAudience(plain.Name, e.token(t, nil), deploy), api.ErrInvalidTarget, "audience", "audience")
	})
	t.Run("trustgate exchange --token-audience", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "ci.jwt")
		if err := os.WriteFile(file, []byte(e.token(t, nil)), 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		err := ciclient.RunCLI(t.Context(), []string{"--server", e.URL, "--connection", conn.Name, "--token-file", file,
			"--token-audience", artifacts}, func(string) string { return "" }, &stdout, &stderr)
		if err != nil {
			t.Fatalf("trustgate exchange: %v\n%s", err, stderr.String())
		}
		_, payload, _ := testkit.Segments(t, strings.TrimSpace(stdout.String()))
		if payload["aud"] != artifacts {
			t.Fatalf("aud %#v, want %q", payload["aud"], artifacts)
		}
	})
	t.Run("a token whose audience the connection drops stops working", func(t *testing.T) {
		both := testkit.MustGrant(t, e.Exchange(conn.Name, e.token(t, nil)), ttl)
		onlyDeploy := testkit.MustGrant(t, e.ExchangeAudience(conn.Name, e.token(t, nil), deploy), ttl)
		p, err := e.DevOps.PatchConnection(t.Context(), conn.Name, map[string]any{"token_audience": []string{deploy}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Security.ApproveProposal(t.Context(), conn.Name, p.Proposal.Fingerprint, 0); err != nil {
			t.Fatal(err)
		}
		if in, err := e.Auditor.Introspect(t.Context(), both); err != nil || in.Active {
			t.Errorf("a token for a dropped audience introspects as %+v, %v; want inactive", in, err)
		}
		if _, err := e.Client(t, both).Whoami(t.Context()); apiclient.StatusCode(err) != http.StatusUnauthorized {
			t.Errorf("whoami of a token for a dropped audience: %v, want 401", err)
		}
		if in, err := e.Auditor.Introspect(t.Context(), onlyDeploy); err != nil || !in.Active {
			t.Errorf("a token for a kept audience introspects as %+v, %v; want active", in, err)
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// single_use: a CI token is exchanged once through the connection, by iss+jti or by its hash;
// the second attempt is a replay, audited as denied; other connections are not affected.
func TestSingleUseOverHTTP(t *testing.T) {
	e := newEnv(t)
	in := e.generic("once")
	in.SingleUse = true
	conn := e.CreateActive(t, in)
	reusable := e.CreateActive(t, e.generic("reusable"))
	ttl := ttlOf(&conn.TokenTTL)

	for name, claims := range map[string]map[string]any{"by iss and jti": nil, "without jti, by hash": {"jti": nil}} {
		t.Run(name, func(t *testing.T) {
			tok := e.token(t, claims)
			first := e.Exchange(conn.Name, tok)
			testkit.MustGrant(t, first, ttl)
			second := e.Exchange(conn.Name, tok)
			ev := e.mustRefuseAt(t, conn, second, api.ErrInvalidGrant, "replay", "single_use")
			if ev.Reason != "replay" || ev.Actor != "workload:example" {
				t.Errorf("replay audited as reason %q actor %q", ev.Reason, ev.Actor)
			}
			if granted := e.ExchangeEvents(t, conn.ID)[first.RequestID]; granted.Outcome != api.OutcomeGranted {
				t.Errorf("the first exchange is audited as %q", granted.Outcome)
			}
			// The same token through a connection without single_use, any number of times.
			testkit.MustGrant(t, e.Exchange(reusable.Name, tok), time.Hour)
			testkit.MustGrant(t, e.Exchange(reusable.Name, tok), time.Hour)
			// The test endpoint never uses a token up.
			if res, err := e.DevOps.TestToken(t.Context(), conn.Name, tok); err != nil || !res.WouldIssue {
				t.Errorf("test endpoint on a used token: %+v %v", res, err)
			}
		})
	}
	t.Run("another token of the same job", func(t *testing.T) {
		testkit.MustGrant(t, e.Exchange(conn.Name, e.token(t, nil)), ttl)
		testkit.MustGrant(t, e.Exchange(conn.Name, e.token(t, nil)), ttl)
	})
	t.Run("a refused exchange does not use the token up", func(t *testing.T) {
		tok := e.token(t, nil)
		e.mustRefuseAt(t, conn, e.ExchangeAudience(conn.Name, tok, "https://evil.example"), api.ErrInvalidTarget, "audience", "audience")
		testkit.MustGrant(t, e.Exchange(conn.Name, tok), ttl)
	})
	t.Run("racing exchanges of one token", func(t *testing.T) {
		tok := e.token(t, nil)
		granted, replays := raceExchanges(t, 16, func(int) testkit.TokenResult { return e.Exchange(conn.Name, tok) })
		if granted != 1 || replays != 15 {
			t.Fatalf("%d granted and %d replays of 16 racing exchanges, want exactly one granted", granted, replays)
		}
	})
}

// raceExchanges runs n exchanges at once and counts grants and replay refusals; anything else
// fails the test.
func raceExchanges(t *testing.T, n int, exchange func(i int) testkit.TokenResult) (granted, replays int) {
	t.Helper()
	results := make([]testkit.TokenResult, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i] = exchange(i)
		})
	}
	close(start)
	wg.Wait()
	for _, r := range results {
		r.Answered(t)
		switch {
		case r.Status == http.StatusOK:
			granted++
		case r.Refusal.Error == api.ErrInvalidGrant && strings.Contains(r.Refusal.ErrorDescription, "replay"):
			replays++
		default:
			t.Errorf("unexpected answer %s", r)
		}
	}
	return granted, replays
}

// Two servers on one PostgreSQL database: a token exchanged on one is a replay on the other, and
// racing exchanges of one token on both grant exactly once.
func TestSingleUseAcrossReplicas(t *testing.T) {
	dsn := testdb.RequirePostgres(t)
	a := &env{Server: testkit.StartOn(t, dsn), iss: ciissuer.Start(t, devissuer.Options{})}
	b := &env{iss: a.iss, Server: testkit.StartOn(t, dsn, testkit.WithConfig(func(c *app.Config) {
		c.KEK = a.App.Config.KEK
		c.PublicURL = a.URL
	}))}
	in := a.generic("once-everywhere")
	in.SingleUse = true
	conn := a.CreateActive(t, in)
	if err := b.App.Catalog.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	tok := a.token(t, nil)
	testkit.MustGrant(t, a.Exchange(conn.Name, tok), time.Hour)
	a.mustRefuseAt(t, conn, b.Exchange(conn.Name, tok), api.ErrInvalidGrant, "replay", "single_use")

	for round := range 3 {
		tok := a.token(t, nil)
		granted, replays := raceExchanges(t, 12, func(i int) testkit.TokenResult {
			if i%2 == 0 {
				return a.Exchange(conn.Name, tok)
			}
			return b.Exchange(conn.Name, tok)
		})
		if granted != 1 || replays != 11 {
			t.Fatalf("round %d: %d granted, %d replays across two replicas; want exactly one granted", round, granted, replays)
		}
	}
}

// A single-use record is kept until the token's exp + 60 s (on the server's clock) and then
// removed by the background cleanup.
func TestSingleUseRecordsExpireWithTheToken(t *testing.T) {
	clock := ciissuer.NewClock(time.Now())
	e := &env{
		Server: testkit.Start(t, testkit.WithClock(clock.Now), testkit.WithConfig(func(c *app.Config) { c.SingleUseCleanup = 10 * time.Millisecond })),
		iss:    ciissuer.Start(t, devissuer.Options{Now: clock.Now}),
	}
	in := e.generic("expiring")
	in.SingleUse = true
	conn := e.CreateActive(t, in)
	tok := e.iss.MustMintWith(t, devissuer.MintOptions{Shape: "generic", Claims: map[string]any{"aud": e.URL}, TTL: 5 * time.Minute})
	testkit.MustGrant(t, e.Exchange(conn.Name, tok), time.Hour)
	count := func() int64 {
		n, err := e.App.Store.CountSingleUse(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count() != 1 {
		t.Fatalf("%d single-use records after one exchange", count())
	}
	clock.Advance(5*time.Minute + 59*time.Second) // exp + 59 s: kept
	// What every cleanup round does, run here at this instant of the clock.
	if n, err := e.App.Store.DeleteExpiredSingleUse(t.Context(), clock.Now(), 500); err != nil || n != 0 || count() != 1 {
		t.Fatalf("a cleanup at exp + 59 s removed %d records (%v); want the record kept", n, err)
	}
	e.mustRefuseAt(t, conn, e.Exchange(conn.Name, tok), api.ErrInvalidGrant, "replay", "single_use")
	clock.Advance(2 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for count() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the record outlived exp + 60 s by 10 s of cleanup rounds")
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.mustRefuseAt(t, conn, e.Exchange(conn.Name, tok), api.ErrInvalidGrant, "expired", "exp")
}

// issuer_url: keys found through the issuer's discovery document; iss pinned first.
func TestIssuerURLOverHTTP(t *testing.T) {
	e := newEnv(t)
	in := api.ConnectionInput{Name: "discovered", ProviderType: api.ProviderGeneric, IssuerURL: e.iss.URL,
		Conditions: []api.Condition{{Claim: "aud", Operator: api.OpEquals, Value: ptr(e.URL)}}}
	conn := e.CreateActive(t, in)
	if first := conn.EffectiveConditions[0]; first.Claim != "iss" || first.Operator != api.OpEquals || *first.Value != e.iss.URL {
		t.Fatalf("first effective condition %+v, want iss equals the issuer_url", first)
	}
	testkit.MustGrant(t, e.Exchange(conn.Name, e.token(t, nil)), time.Hour)
	res, err := e.DevOps.TestToken(t.Context(), conn.Name, e.token(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	if d := checkNamed(t, res, "discovery"); !d.Passed || d.Actual != e.iss.URL {
		t.Errorf("discovery check %+v", d)
	}
	// A token claiming another issuer fails the pinned iss (the keys are right: the test issuer
	// signs for any iss it is asked to).
	e.mustRefuseAt(t, conn, e.Exchange(conn.Name, e.token(t, map[string]any{"iss": "https://other.example"})), api.ErrInvalidGrant, "condition", "condition: iss equals")
	// A token signed by another issuer's key fails the signature.
	other := ciissuer.Start(t, devissuer.Options{})
	forged := other.MustMint(t, "generic", map[string]any{"iss": e.iss.URL, "aud": e.URL})
	e.mustRefuseAt(t, conn, e.Exchange(conn.Name, forged), api.ErrInvalidGrant, "signature", "key")
}

// checkNamed finds a check of the test endpoint's report.
func checkNamed(t *testing.T, res *api.TestResult, name string) api.Check {
	t.Helper()
	for _, c := range res.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %q check in %+v", name, res.Checks)
	return api.Check{}
}

// A discovery document that lies about its issuer, or whose jwks_uri is refused, makes exchanges
// fail with the signature kind, and the test endpoint says why; the JWKS it names is never
// fetched.
func TestDiscoveryDocumentsThatCannotVouchForKeys(t *testing.T) {
	e := newEnv(t)
	for name, tc := range map[string]struct {
		doc    func(self string) map[string]any
		actual func(self string) any
		detail string
	}{
		"an issuer that is not issuer_url": {
			doc:    func(string) map[string]any { return map[string]any{"issuer": e.iss.URL, "jwks_uri": e.iss.JWKSURL} },
			actual: func(string) any { return e.iss.URL }, detail: "names the issuer",
		},
		"a trailing slash": {
			doc: func(self string) map[string]any {
				return map[string]any{"issuer": self + "/", "jwks_uri": e.iss.JWKSURL}
			},
			actual: func(self string) any { return self + "/" }, detail: "trailing slash",
		},
		"a jwks_uri with another scheme": {
			doc: func(self string) map[string]any {
				return map[string]any{"issuer": self, "jwks_uri": "file:///etc/passwd"}
			},
			actual: func(self string) any { return self }, detail: "jwks_uri is refused",
		},
		"a jwks_uri with credentials": {
			doc: func(self string) map[string]any {
				return map[string]any{"issuer": self, "jwks_uri": strings.Replace(e.iss.JWKSURL, "http://", "http://u:p@", 1)}
			},
			actual: func(self string) any { return self }, detail: "credentials",
		},
	} {
		t.Run(name, func(t *testing.T) {
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = json.NewEncoder(w).Encode(tc.doc(srv.URL))
			}))
			t.Cleanup(srv.Close)
			in := api.ConnectionInput{Name: "lying-" + strings.ReplaceAll(strings.ReplaceAll(name, " ", "-"), "_", "-"), ProviderType: api.ProviderGeneric, IssuerURL: srv.URL,
				Conditions: []api.Condition{{Claim: "aud", Operator: api.OpEquals, Value: ptr(e.URL)}}}
			conn := e.CreateActive(t, in)
			jwksHits := e.iss.JWKSHits()
			tok := e.token(t, map[string]any{"iss": srv.URL})
			ev := e.mustRefuseAt(t, conn, e.Exchange(conn.Name, tok), api.ErrInvalidGrant, "signature", "discovery")
			if !strings.Contains(fmt.Sprint(ev.Detail["detail"]), tc.detail) {
				t.Errorf("audit detail %v does not say %q", ev.Detail, tc.detail)
			}
			res, err := e.DevOps.TestToken(t.Context(), conn.Name, tok)
			if err != nil {
				t.Fatal(err)
			}
			d := checkNamed(t, res, "discovery")
			if res.WouldIssue || d.Passed || d.Expected != srv.URL || d.Actual != tc.actual(srv.URL) || !strings.Contains(d.Detail, tc.detail) {
				t.Fatalf("would_issue %v, discovery check %+v; want it failed, expecting %s, showing %v and saying %q", res.WouldIssue, d, srv.URL, tc.actual(srv.URL), tc.detail)
			}
			if e.iss.JWKSHits() != jwksHits {
				t.Error("the keys named by a refused discovery document were fetched")
			}
		})
	}
}

// jwks: keys given inline; nothing is fetched; a key with private members is a 422 naming jwks.
func TestInlineJWKSOverHTTP(t *testing.T) {
	e := newEnv(t)
	keys, err := e.iss.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	in := e.generic("inline")
	in.JWKSURL, in.JWKS = "", string(keys)
	conn := e.CreateActive(t, in)
	hits := e.iss.Hits()
	testkit.MustGrant(t, e.Exchange(conn.Name, e.token(t, nil)), time.Hour)
	if e.iss.Hits() != hits {
		t.Fatalf("%d requests to the issuer for a connection with inline keys", e.iss.Hits()-hits)
	}
	other := ciissuer.Start(t, devissuer.Options{})
	forged := other.MustMint(t, "generic", map[string]any{"iss": e.iss.URL, "aud": e.URL})
	ev := e.mustRefuseAt(t, conn, e.Exchange(conn.Name, forged), api.ErrInvalidGrant, "signature", "key")
	if ev.Detail["expected"] != "a key of the connection's inline JWKS" {
		t.Errorf("key check expected %v, want it to name the inline JWKS", ev.Detail["expected"])
	}

	t.Run("private members are refused", func(t *testing.T) {
		var set map[string]any
		if err := json.Unmarshal(keys, &set); err != nil {
			t.Fatal(err)
		}
		key := set["keys"].([]any)[0].(map[string]any)
		key["d"] = "AQAB"
		leaked := mustJSON(t, set)
		bad := e.generic("leaked")
		bad.JWKSURL, bad.JWKS = "", string(leaked)
		r := e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: bad})
		p := r.Problem(t, http.StatusUnprocessableEntity)
		if len(p.Errors) == 0 || p.Errors[0].Field != "jwks" || !strings.Contains(p.Errors[0].Detail, `"d"`) {
			t.Fatalf("errors %+v, want jwks naming the private member d", p.Errors)
		}
		if strings.Contains(string(r.Body), "AQAB") {
			t.Error("the answer repeats the private key material")
		}
		// And through a patch of a draft.
		draft := e.CreateDraft(t, e.generic("to-patch"))
		r = e.Do(t, testkit.Request{Method: http.MethodPatch, Path: "/v1/workload-connections/" + draft.Name, Key: e.DevOpsKey,
			Body: map[string]any{"jwks_url": nil, "jwks": string(leaked)}})
		if p := r.Problem(t, http.StatusUnprocessableEntity); len(p.Errors) == 0 || p.Errors[0].Field != "jwks" {
			t.Fatalf("patch errors %+v, want jwks", p.Errors)
		}
	})
}

// GitHub Enterprise Server: the github preset with host pins https://<host>/_services/token; its
// keys can be given inline (a server Trustgate cannot reach) or by a jwks_url override.
func TestGitHubEnterpriseServerPreset(t *testing.T) {
	e := newEnv(t)
	keys, err := e.iss.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	const ghesIssuer = "https://ghes.acme.example/_services/token"
	for name, source := range map[string]func(*api.ConnectionInput){
		"inline jwks":       func(in *api.ConnectionInput) { in.JWKSURL, in.JWKS = "", string(keys) },
		"jwks_url override": func(in *api.ConnectionInput) { in.JWKSURL = e.iss.JWKSURL },
	} {
		t.Run(name, func(t *testing.T) {
			in := testkit.GitHubInput("ghes-"+strings.ReplaceAll(name, " ", "-"), e.iss.JWKSURL)
			in.Name = strings.ReplaceAll(in.Name, "_", "-")
			in.GitHub.Host = "ghes.acme.example"
			source(&in)
			conn := e.CreateActive(t, in)
			if c := conn.EffectiveConditions[0]; *c.Value != ghesIssuer {
				t.Fatalf("pinned issuer %q, want %q", *c.Value, ghesIssuer)
			}
			mint := func(claims map[string]any) string {
				return e.iss.MustMint(t, "github", withAudience(e.URL, claims))
			}
			testkit.MustGrant(t, e.Exchange(conn.Name, mint(map[string]any{"iss": ghesIssuer})), time.Hour)
			// GitHub.com's token (and any other issuer's) is refused by the pinned issuer.
			e.mustRefuseAt(t, conn, e.Exchange(conn.Name, mint(nil)), api.ErrInvalidGrant, "condition", "condition: iss equals")
			// Another owner on the same GHES instance is refused by the pinned owner id.
			e.mustRefuseAt(t, conn, e.Exchange(conn.Name, mint(map[string]any{"iss": ghesIssuer, "repository_owner_id": "66"})),
				api.ErrInvalidGrant, "condition", "condition: repository_owner_id equals")
		})
	}
}
