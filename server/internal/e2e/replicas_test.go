package e2e_test

import (
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/server/app"
)

// TestDeactivationReachesEveryReplicaWithinOneSecond runs two servers on one database (same
// key-encryption key, as replicas are deployed): a token issued by one verifies on the other's
// JWKS, and a deactivation made through one stops exchanges and introspection on the other within
// 1 second (CONTRACT.md §4).
func TestDeactivationReachesEveryReplicaWithinOneSecond(t *testing.T) {
	a := newEnv(t)
	replica := testkit.StartOn(t, a.s.DSN, testkit.WithConfig(func(c *app.Config) {
		c.KEK = a.s.App.Config.KEK
		c.PublicURL = a.s.URL // one public URL for the deployment
		c.CatalogPoll = 250 * time.Millisecond
	}))
	b := &env{s: replica, iss: a.iss, devops: replica.Client(t, replica.DevOpsKey),
		security: replica.Client(t, replica.SecurityKey), auditor: replica.Client(t, replica.AuditorKey)}

	conn := a.createActive(t, api.ConnectionInput{Name: "replicated", JWKSURL: a.iss.JWKSURL, Conditions: []api.Condition{
		{Claim: "iss", Operator: api.OpEquals, Value: ptr(a.iss.URL)},
		{Claim: "aud", Operator: api.OpEquals, Value: ptr(a.s.URL)},
	}})
	mint := func() string { return a.iss.mint(t, "generic", map[string]any{"aud": a.s.URL}) }

	// The replica sees the activation made through the first server.
	var access string
	deadline := time.Now().Add(time.Second)
	for {
		r := b.exchange(t, conn.Name, mint())
		if r.Status == 200 {
			access = mustGrant(t, r, time.Hour)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica still refuses 1 s after the activation: %s", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Both servers publish the same keys: the replica's token verifies against the first's JWKS.
	a.verifyAccess(t, access, conn, "workload:example", a.iss.URL, time.Hour)

	// Deactivate through the replica; the first server must follow within 1 s.
	b.setStatus(t, conn, api.StatusInactive)
	changed := time.Now()
	for {
		r := a.exchange(t, conn.Name, mint())
		in, err := a.auditor.Introspect(ctx(t), access)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != 200 && !in.Active {
			mustRefuse(t, r, api.ErrInvalidTarget, "")
			t.Logf("deactivation reached the other replica after %s", time.Since(changed).Round(time.Millisecond))
			break
		}
		if time.Since(changed) > time.Second {
			t.Fatalf("1 s after deactivation the other replica still answers exchange %d, introspection active=%v", r.Status, in.Active)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
