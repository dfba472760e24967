package e2e_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

// TestExchangesAreAudited checks that a granted and a denied exchange each leave one token.exchange
// audit event under the response's X-Request-Id, the denied one with the failing check's expected
// and actual values (which the response withholds).
func TestExchangesAreAudited(t *testing.T) {
	e := newEnv(t)
	in := e.generic("audited")
	in.Conditions = append(in.Conditions, api.Condition{Claim: "sub", Operator: api.OpEquals, Value: ptr("workload:example")})
	conn := e.CreateActive(t, in)
	send := func(requestID, token string) testkit.TokenResult {
		h := http.Header{}
		if requestID != "" {
			h.Set("X-Request-Id", requestID)
		}
		return e.PostForm(testkit.ExchangeForm(conn.Name, token), h)
	}

	granted := send("e2e-granted-1", e.token(t, nil))
	access := testkit.MustGrant(t, granted, time.Hour)
	denied := send("e2e-denied-1", e.token(t, map[string]any{"sub": "workload:intruder"}))
	testkit.MustRefuse(t, denied, api.ErrInvalidGrant, "condition", "workload:example")
	generated := send("", e.token(t, map[string]any{"exp": unix(-time.Hour), "iat": unix(-2 * time.Hour), "nbf": unix(-2 * time.Hour)}))
	testkit.MustRefuse(t, generated, api.ErrInvalidGrant, "expired")

	if granted.RequestID != "e2e-granted-1" || denied.RequestID != "e2e-denied-1" {
		t.Errorf("X-Request-Id not echoed: %q, %q", granted.RequestID, denied.RequestID)
	}
	if generated.RequestID == "" {
		t.Fatalf("no generated X-Request-Id")
	}

	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(access, &claims); err != nil {
		t.Fatal(err)
	}

	events := e.ExchangeEvents(t, conn.ID)
	if len(events) != 3 {
		t.Errorf("%d token.exchange events for the connection, want 3", len(events))
	}
	t.Run("granted", func(t *testing.T) {
		ev, ok := events["e2e-granted-1"]
		if !ok {
			t.Fatalf("no audit event with request id e2e-granted-1: %v", events)
		}
		if ev.Action != api.ActionTokenExchange || ev.Outcome != api.OutcomeGranted {
			t.Errorf("action, outcome = %q, %q; want token.exchange, granted", ev.Action, ev.Outcome)
		}
		if ev.ConnectionID != conn.ID || ev.ConnectionName != conn.Name {
			t.Errorf("connection = %q/%q, want %q/%q", ev.ConnectionID, ev.ConnectionName, conn.ID, conn.Name)
		}
		if ev.Actor != "workload:example" {
			t.Errorf("actor = %q, want the workload's sub", ev.Actor)
		}
		if ev.Detail["jti"] != claims.ID {
			t.Errorf("detail.jti = %v, want the access token's jti %q", ev.Detail["jti"], claims.ID)
		}
		if ev.RemoteAddr == "" {
			t.Errorf("remote_addr is empty")
		}
	})
	t.Run("denied with the failing check", func(t *testing.T) {
		ev, ok := events["e2e-denied-1"]
		if !ok {
			t.Fatalf("no audit event with request id e2e-denied-1")
		}
		if ev.Outcome != api.OutcomeDenied || ev.Reason != "condition" {
			t.Errorf("outcome, reason = %q, %q; want denied, condition", ev.Outcome, ev.Reason)
		}
		if ev.Detail["check"] != "condition: sub equals" || ev.Detail["expected"] != "workload:example" || ev.Detail["actual"] != "workload:intruder" {
			t.Errorf("detail = %v, want check \"condition: sub equals\", expected workload:example, actual workload:intruder", ev.Detail)
		}
	})
	t.Run("denied under a generated request id", func(t *testing.T) {
		ev, ok := events[generated.RequestID]
		if !ok {
			t.Fatalf("no audit event with the generated request id %s", generated.RequestID)
		}
		if ev.Outcome != api.OutcomeDenied || ev.Reason != "expired" || ev.Detail["check"] != "exp" {
			t.Errorf("outcome, reason, detail = %q, %q, %v; want denied, expired, check exp", ev.Outcome, ev.Reason, ev.Detail)
		}
		if ev.Detail["expected"] == nil || ev.Detail["actual"] == nil {
			t.Errorf("detail lacks expected or actual: %v", ev.Detail)
		}
	})
	t.Run("auditors read them", func(t *testing.T) {
		page, err := e.Auditor.ListAuditEvents(t.Context(), apiclient.AuditOptions{Connection: conn.Name, Action: api.ActionTokenExchange})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 3 {
			t.Errorf("the auditor sees %d exchange events, want 3", len(page.Items))
		}
	})
}
