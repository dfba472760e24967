package session_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/console/session"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/principal"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

func TestSessionLifecycle(t *testing.T) {
	t.Parallel()
	st := storetest.New(t)
	keys := &principal.Service{Store: st}
	key, err := keys.Create(t.Context(), "alice", api.RoleSecurityAdmin)
	if err != nil {
		t.Fatal(err)
	}
	clock := ciissuer.NewClock(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	s := &session.Service{Store: st, Keys: keys, Now: clock.Now}

	for _, bad := range []string{"", "tg_unknown", "no-prefix", key + "x", string([]byte{0xff, 't', 'g', '_'})} {
		if _, _, err := s.SignIn(t.Context(), bad); !errors.Is(err, session.ErrBadKey) {
			t.Errorf("SignIn(%q) = %v, want ErrBadKey", bad, err)
		}
	}
	token, sess, err := s.SignIn(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	if sess.Principal != "alice" || sess.Role != api.RoleSecurityAdmin || !sess.ExpiresAt.Equal(clock.Now().Add(12*time.Hour)) {
		t.Errorf("session %+v", sess)
	}
	other, _, err := s.SignIn(t.Context(), key)
	if err != nil || other == token {
		t.Fatalf("a second sign-in: %v, same token %v", err, other == token)
	}
	if got, err := s.Resume(t.Context(), token); err != nil || got.Principal != "alice" {
		t.Fatalf("Resume = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "x", token + "A", session.HashToken(token)} {
		if _, err := s.Resume(t.Context(), bad); !errors.Is(err, session.ErrNoSession) {
			t.Errorf("Resume(%q) = %v, want ErrNoSession", bad, err)
		}
	}

	if err := s.SignOut(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resume(t.Context(), token); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("after sign-out: %v, want ErrNoSession", err)
	}
	if _, err := s.Resume(t.Context(), other); err != nil {
		t.Errorf("signing one session out ended another: %v", err)
	}
	clock.Advance(session.Lifetime)
	if _, err := s.Resume(t.Context(), other); !errors.Is(err, session.ErrNoSession) {
		t.Errorf("after 12 h: %v, want ErrNoSession", err)
	}
}

func TestCSRFTokensAreBoundToTheirSession(t *testing.T) {
	t.Parallel()
	a, _ := session.NewNonce()
	b, _ := session.NewNonce()
	if session.CSRFToken(a) == session.CSRFToken(b) || session.CSRFToken(a) != session.CSRFToken(strings.Clone(a)) {
		t.Fatal("CSRF tokens must be stable per session and differ between sessions")
	}
	if !session.ValidCSRF(a, session.CSRFToken(a)) {
		t.Error("a session's own token is refused")
	}
	for name, got := range map[string]string{"another session's": session.CSRFToken(b), "empty": "", "the session token itself": a} {
		if session.ValidCSRF(a, got) {
			t.Errorf("%s token accepted", name)
		}
	}
	if session.ValidCSRF("", session.CSRFToken("")) {
		t.Error("a token derived from no session is accepted")
	}
}
