package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/jwtverify"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

func testConn(name string) *connection.Connection {
	v := "x"
	now := time.Now().UTC()
	return &connection.Connection{ID: "", Spec: api.ConnectionInput{Name: name, ProviderType: api.ProviderGeneric,
		JWKSURL: "https://idp.example/jwks", TokenTTL: &api.TokenTTL{Amount: 1, Unit: api.UnitHours}, IdentityClaim: "sub",
		Conditions: []api.Condition{{Claim: "iss", Operator: api.OpEquals, Value: &v}, {Claim: "aud", Operator: api.OpEquals, Value: &v}}},
		Status: api.StatusDraft, Revision: 1, CreatedBy: "d", UpdatedBy: "d", ConfigChangedBy: "d", CreatedAt: now, UpdatedAt: now}
}

// The catalog follows creates, status changes, renames and deletes made through the store, and
// resolves only connections whose revision moved.
func TestCatalogFollowsTheStore(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	opts := connection.Options{DefaultAudience: "https://tg.example"}
	a, b := testConn("alpha"), testConn("beta")
	for _, c := range []*connection.Connection{a, b} {
		if err := st.CreateConnection(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := NewCatalog(ctx, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	if cat.ByName("alpha") == nil || cat.ByID(b.ID) == nil || cat.ByName("gamma") != nil {
		t.Fatal("the catalog does not hold exactly the stored connections")
	}
	betaBefore := cat.ByID(b.ID)

	next := *a
	next.Status, next.Revision = api.StatusActive, a.Revision+1
	next.Spec.Name = "alpha-2"
	if err := st.UpdateConnection(ctx, &next, a.Revision, nil); err != nil {
		t.Fatal(err)
	}
	if cat.ByName("alpha") == nil {
		t.Fatal("the catalog changed before Refresh")
	}
	if err := cat.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if e := cat.ByName("alpha-2"); e == nil || !e.Active() || cat.ByName("alpha") != nil {
		t.Fatalf("after a rename and activation: alpha-2 = %+v, alpha still present = %v", e, cat.ByName("alpha") != nil)
	}
	if cat.ByID(b.ID) != betaBefore {
		t.Error("an unchanged connection was resolved again")
	}

	if err := st.DeleteConnection(ctx, b.ID, b.Revision, nil); err != nil {
		t.Fatal(err)
	}
	if err := cat.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if cat.ByID(b.ID) != nil || cat.ByName("beta") != nil {
		t.Error("a deleted connection is still in the catalog")
	}
}

// Run picks up a change made by someone else (another replica) within a few poll intervals.
func TestCatalogRunPollsForChangesFromOtherReplicas(t *testing.T) {
	st := storetest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cat, err := NewCatalog(ctx, st, connection.Options{DefaultAudience: "https://tg.example"})
	if err != nil {
		t.Fatal(err)
	}
	go cat.Run(ctx, 20*time.Millisecond)
	c := testConn("late")
	if err := st.CreateConnection(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for cat.ByName("late") == nil {
		if time.Now().After(deadline) {
			t.Fatal("the poller did not pick up a new connection within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkCatalogRefreshAfterOneChange is the catalog's work after each change in a large
// terraform apply: 500 connections, one of them updated between refreshes.
func BenchmarkCatalogRefreshAfterOneChange(b *testing.B) {
	st := storetest.New(b)
	ctx := context.Background()
	conns := make([]*connection.Connection, 500)
	for i := range conns {
		conns[i] = testConn(fmt.Sprintf("conn-%03d", i))
		if err := st.CreateConnection(ctx, conns[i], nil); err != nil {
			b.Fatal(err)
		}
	}
	cat, err := NewCatalog(ctx, st, connection.Options{DefaultAudience: "https://tg.example"})
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		b.StopTimer()
		c := conns[i%len(conns)]
		next := *c
		next.Spec.Description = fmt.Sprintf("change %d", i)
		if err := st.UpdateConnection(ctx, &next, c.Revision, nil); err != nil {
			b.Fatal(err)
		}
		*c = next
		i++
		b.StartTimer()
		if err := cat.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if e := cat.ByID(conns[0].ID); e == nil || e.Conn.Revision != conns[0].Revision {
		b.Fatal("the catalog did not follow the changes")
	}
}

// The JWKS cache's URLs in use include a connection's discovery document and the jwks_uri it
// names, and a pending proposal's; they go when nothing uses them any more.
func TestCatalogKeepsDiscoveredJWKSURLsInTheCache(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	iss := ciissuer.Start(t, devissuer.Options{})
	opts := connection.Options{DefaultAudience: "https://tg.example", AllowInsecureJWKS: true}
	c := testConn("discovered")
	c.Spec.JWKSURL, c.Spec.IssuerURL = "", iss.URL
	if err := st.CreateConnection(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	cat, err := NewCatalog(ctx, st, opts)
	if err != nil {
		t.Fatal(err)
	}
	cache := jwtverify.NewJWKSCache(jwtverify.JWKSOptions{AllowInsecure: true})
	cat.PruneJWKS(cache)
	v := jwtverify.NewVerifier(cache, jwtverify.VerifierOptions{})
	tok, err := iss.Mint("generic", map[string]any{"aud": "x"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// Its conditions (iss and aud "x") fail; the keys, found through discovery, verify.
	if res := v.Verify(ctx, tok, cat.ByName("discovered").Policy); !res.Verified {
		t.Fatalf("not verified: %s %+v", res.FailedKind, res.Checks)
	}
	if n := cache.Stats().URLs; n != 2 {
		t.Fatalf("%d URLs cached, want the discovery document and its JWKS", n)
	}

	// Another connection changes: the rebuild prunes, and both URLs stay.
	other := testConn("other")
	if err := st.CreateConnection(ctx, other, nil); err != nil {
		t.Fatal(err)
	}
	if err := cat.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := cache.Stats().URLs; n != 2 {
		t.Fatalf("after a rebuild %d URLs cached, want the discovered jwks_uri kept", n)
	}
	// Deleted: nothing uses them.
	if err := st.DeleteConnection(ctx, c.ID, c.Revision, nil); err != nil {
		t.Fatal(err)
	}
	if err := cat.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := cache.Stats().URLs; n != 0 {
		t.Fatalf("%d URLs cached after the connection was deleted", n)
	}
}

// Inline keys are parsed when the catalog loads the connection: exchanges fetch nothing.
func TestCatalogParsesInlineKeysOnce(t *testing.T) {
	st := storetest.New(t)
	ctx := context.Background()
	iss := ciissuer.Start(t, devissuer.Options{})
	doc, err := iss.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	c := testConn("inline")
	c.Spec.JWKSURL, c.Spec.JWKS = "", string(doc)
	if err := st.CreateConnection(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	cat, err := NewCatalog(ctx, st, connection.Options{DefaultAudience: "https://tg.example"})
	if err != nil {
		t.Fatal(err)
	}
	e := cat.ByName("inline")
	if e.Policy.Inline == nil || e.Policy.Inline.Len() != 1 || len(e.Policy.Sources()) != 0 {
		t.Fatalf("policy %+v: want one parsed inline key and no source to fetch", e.Policy)
	}
}
