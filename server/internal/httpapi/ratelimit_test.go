package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
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
		form := url.Values{"grant_type": {api.GrantTypeTokenExchange}, "subject_token": {"a.b.c"},
			"subject_token_type": {api.TokenTypeJWT}, "connection": {"made-up"}}
		resp, err := http.Post(e.URL+"/v1/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("request %d for an unknown connection: %d, want 400 invalid_target", i+1, resp.StatusCode)
		}
	}
}
