package e2e_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
)

// TestIntrospectionAndWhoamiFollowTheConnection exchanges a token, then checks POST /v1/introspect
// and GET /v1/whoami with it before and right after the connection is deactivated, and for access
// tokens that are expired or were not signed by this server.
func TestIntrospectionAndWhoamiFollowTheConnection(t *testing.T) {
	e := newEnv(t)
	in := e.generic("introspected")
	in.TokenTTL = &api.TokenTTL{Amount: 5, Unit: api.UnitMinutes}
	conn := e.CreateActive(t, in)
	access := testkit.MustGrant(t, e.Exchange(conn.Name, e.token(t, nil)), 5*time.Minute)
	claims := e.VerifyAccess(t, access)
	claims.Expect(t, conn, "workload:example", e.iss.URL, 5*time.Minute)

	introspect := func(t *testing.T, token string) *api.Introspection {
		t.Helper()
		got, err := e.Auditor.Introspect(t.Context(), token) // any API key may introspect
		if err != nil {
			t.Fatalf("introspect: %v", err)
		}
		return got
	}
	whoami := func(t *testing.T, token string) (*api.Whoami, error) {
		t.Helper()
		return e.Client(t, token).Whoami(t.Context())
	}

	// Access tokens the server did not issue for this connection, or that are no longer valid.
	past := time.Now().Add(-10 * time.Minute)
	expired, err := e.App.Keys.Mint(signing.AccessClaims{Subject: "workload:example", IssuedAt: past, NotBefore: past,
		Expiry: past.Add(5 * time.Minute), Connection: conn.Name, ConnectionID: conn.ID, SourceIssuer: e.iss.URL})
	if err != nil {
		t.Fatal(err)
	}
	otherRing := func() *signing.KeyRing {
		kek := make([]byte, signing.KEKSize)
		_, _ = rand.Read(kek)
		sk, err := signing.NewStoredKey(kek, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ring, err := signing.NewKeyRing([]signing.StoredKey{sk}, kek)
		if err != nil {
			t.Fatal(err)
		}
		ring.Issuer, ring.Audience = e.URL, e.URL
		return ring
	}()
	now := time.Now()
	sameClaims := signing.AccessClaims{Subject: "workload:example", IssuedAt: now, NotBefore: now, Expiry: now.Add(5 * time.Minute),
		Connection: conn.Name, ConnectionID: conn.ID, SourceIssuer: e.iss.URL}
	otherServer, err := otherRing.Mint(sameClaims)
	if err != nil {
		t.Fatal(err)
	}
	// A forgery under the server's own kid, signed with an attacker's P-256 key.
	attackerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": e.URL, "aud": e.URL, "sub": "workload:example",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": "forged",
		"connection": conn.Name, "connection_id": conn.ID, "source_iss": e.iss.URL})
	forged.Header["kid"] = e.App.Keys.KID()
	forgedToken, err := forged.SignedString(attackerKey)
	if err != nil {
		t.Fatal(err)
	}
	ciToken := e.token(t, nil)

	t.Run("a fresh token is active", func(t *testing.T) {
		got := introspect(t, access)
		if !got.Active || got.Sub != "workload:example" || got.Connection != conn.Name || got.ConnectionID != conn.ID ||
			got.Iss != e.URL || got.Exp != claims.ExpiresAt.Unix() || got.Jti != claims.ID {
			t.Errorf("introspection = %+v, want active with the token's claims", got)
		}
		who, err := whoami(t, access)
		if err != nil {
			t.Fatalf("whoami with the access token: %v", err)
		}
		if who.Kind != "workload" || who.Sub != "workload:example" || who.Connection != conn.Name || who.ConnectionID != conn.ID ||
			who.ExpiresAt == nil || !who.ExpiresAt.Equal(claims.ExpiresAt.Time) {
			t.Errorf("whoami = %+v, want the workload", who)
		}
	})

	inactiveCases := map[string]string{
		"an expired token":                    expired,
		"a token of another Trustgate server": otherServer,
		"a forgery under the server's kid":    forgedToken,
		"a CI token":                          ciToken,
		"a tampered access token":             access[:len(access)-6] + "AAAAAA",
		"garbage":                             "not-a-token",
	}
	for name, tok := range inactiveCases {
		t.Run(name+" is not active", func(t *testing.T) {
			if got := introspect(t, tok); got.Active || got.Sub != "" {
				t.Errorf("introspection = %+v, want only active:false", got)
			}
			if _, err := whoami(t, tok); apiclient.StatusCode(err) != http.StatusUnauthorized {
				t.Errorf("whoami: %v, want 401", err)
			}
		})
	}

	t.Run("introspection needs an API key", func(t *testing.T) {
		if _, err := e.Client(t, access).Introspect(t.Context(), access); apiclient.StatusCode(err) != http.StatusUnauthorized {
			t.Errorf("introspect with an access token as credential: %v, want 401", err)
		}
	})

	t.Run("right after deactivation", func(t *testing.T) {
		e.SetStatus(t, conn, api.StatusInactive)
		if got := introspect(t, access); got.Active {
			t.Errorf("introspection right after deactivation = %+v, want active:false", got)
		}
		if _, err := whoami(t, access); apiclient.StatusCode(err) != http.StatusUnauthorized {
			t.Errorf("whoami after deactivation: %v, want 401", err)
		}
		testkit.MustRefuse(t, e.Exchange(conn.Name, e.token(t, nil)), api.ErrInvalidTarget, "")
	})

	t.Run("a reused connection name does not revive the token", func(t *testing.T) {
		if err := e.Security.DeleteConnection(t.Context(), conn.ID, 0); err != nil {
			t.Fatalf("deleting the inactive connection: %v", err)
		}
		again := e.CreateActive(t, e.generic(conn.Name))
		if again.ID == conn.ID {
			t.Fatalf("the new connection reuses the id %s", conn.ID)
		}
		if got := introspect(t, access); got.Active {
			t.Errorf("a token of the deleted connection is active again under its reused name: %+v", got)
		}
		if _, err := whoami(t, access); apiclient.StatusCode(err) != http.StatusUnauthorized {
			t.Errorf("whoami: %v, want 401", err)
		}
	})

	t.Run("whoami with an API key is the principal", func(t *testing.T) {
		who, err := e.DevOps.Whoami(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if who.Kind != "principal" || who.Name != "devops" || who.Role != api.RoleDevOpsAdmin {
			t.Errorf("whoami = %+v", who)
		}
	})
}
