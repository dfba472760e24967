package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/server/app"
)

// Names an anonymous caller makes up get no per-connection bucket: however many requests name an
// unknown connection, each is answered invalid_target, never 429 (and the limiter's table does
// not fill with made-up names).
func TestMadeUpConnectionNamesAreNotRateLimitedPerConnection(t *testing.T) {
	e := start(t, testkit.WithConfig(func(c *app.Config) {
		c.RatePerConnection, c.RateBurst = 0.001, 1
	}))
	for i := range 5 {
		r := e.Exchange("made-up", "a.b.c").Answered(t)
		if r.Status != http.StatusBadRequest {
			t.Fatalf("request %d for an unknown connection: %s, want 400 invalid_target", i+1, r)
		}
	}
}
