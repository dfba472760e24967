package e2e_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
)

// env is one in-process server (with its principals' clients and token endpoint) and the CI
// issuer the tests' connections trust.
type env struct {
	*testkit.Server
	iss *ciissuer.Issuer
}

func newEnv(t *testing.T, opts ...testkit.Option) *env {
	t.Helper()
	return &env{Server: testkit.Start(t, opts...), iss: ciissuer.Start(t, devissuer.Options{})}
}

// generic is a generic connection trusting e's issuer for tokens minted for e's server.
func (e *env) generic(name string) api.ConnectionInput {
	return testkit.GenericInput(name, e.iss.URL, e.iss.JWKSURL, e.URL)
}

// token mints a generic token for e's server with the claims overridden.
func (e *env) token(t *testing.T, overrides map[string]any) string {
	t.Helper()
	return e.iss.MustMint(t, "generic", withAudience(e.URL, overrides))
}

// withAudience is overrides with aud set to audience unless overrides set it.
func withAudience(audience string, overrides map[string]any) map[string]any {
	m := map[string]any{"aud": audience}
	maps.Copy(m, overrides)
	return m
}

func ptr[T any](v T) *T { return &v }

func ttlOf(t *api.TokenTTL) time.Duration {
	if t == nil {
		return time.Hour
	}
	unit := map[string]time.Duration{api.UnitSeconds: time.Second, api.UnitMinutes: time.Minute, api.UnitHours: time.Hour}[t.Unit]
	return time.Duration(t.Amount) * unit
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}
