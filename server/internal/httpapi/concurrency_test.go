package httpapi_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

const racers = 8

// race sends n requests at once and returns their status codes.
func race(t *testing.T, e *env, n int, mk func(i int) testkit.Request) map[int]int {
	t.Helper()
	codes := make([]int, n)
	var wg sync.WaitGroup
	startGun := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGun
			codes[i] = e.Do(t, mk(i)).Status
		}()
	}
	close(startGun)
	wg.Wait()
	out := map[int]int{}
	for _, c := range codes {
		out[c]++
	}
	return out
}

func successEvents(evs []api.AuditEvent, action string) int {
	n := 0
	for _, ev := range evs {
		if ev.Action == action && ev.Outcome == api.OutcomeSuccess {
			n++
		}
	}
	return n
}

func TestConcurrentPatchesWithTheSameIfMatch_ExactlyOneWins(t *testing.T) {
	e := start(t)
	c := e.create(t, githubInput("race-if-match"))
	codes := race(t, e, racers, func(i int) testkit.Request {
		return testkit.Request{Method: http.MethodPatch, Path: "/v1/workload-connections/" + c.ID, Key: e.DevOpsKey,
			ContentType: "application/merge-patch+json", Body: map[string]any{"description": fmt.Sprintf("writer %d", i)},
			Header: http.Header{"If-Match": {etag(c.Revision)}}}
	})
	if codes[200] != 1 || codes[412] != racers-1 {
		t.Errorf("status codes %v, want one 200 and %d × 412", codes, racers-1)
	}
	if got := e.get(t, c.ID); got.Revision != 2 {
		t.Errorf("revision %d, want 2", got.Revision)
	}
	if n := successEvents(e.auditOf(t, c.ID), api.ActionConnectionUpdate); n != 1 {
		t.Errorf("%d update events, want 1", n)
	}
}

func TestConcurrentPatchesWithoutIfMatch_EveryAnswerIsTruthful(t *testing.T) {
	e := start(t)
	c := e.create(t, githubInput("race-blind"))
	codes := race(t, e, racers, func(i int) testkit.Request {
		return testkit.Request{Method: http.MethodPatch, Path: "/v1/workload-connections/" + c.ID, Key: e.DevOpsKey,
			ContentType: "application/merge-patch+json", Body: map[string]any{"description": fmt.Sprintf("writer %d", i)}}
	})
	if codes[200]+codes[409] != racers || codes[200] == 0 {
		t.Errorf("status codes %v, want only 200 (at least one) and 409", codes)
	}
	got := e.get(t, c.ID)
	if got.Revision != 1+int64(codes[200]) {
		t.Errorf("revision %d after %d successful patches", got.Revision, codes[200])
	}
	if n := successEvents(e.auditOf(t, c.ID), api.ActionConnectionUpdate); n != codes[200] {
		t.Errorf("%d update events for %d successful patches", n, codes[200])
	}
}

func TestConcurrentCreatesWithTheSameName_OneIsCreatedTheRestAre409(t *testing.T) {
	e := start(t)
	codes := race(t, e, racers, func(int) testkit.Request {
		return testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: githubInput("race-create")}
	})
	if codes[201] != 1 || codes[409] != racers-1 {
		t.Errorf("status codes %v, want one 201 and %d × 409", codes, racers-1)
	}
	if n := successEvents(e.auditOf(t, "race-create"), api.ActionConnectionCreate); n != 1 {
		t.Errorf("%d create events, want 1", n)
	}
}

func TestConcurrentActivations_OneStatusChange(t *testing.T) {
	e := start(t)
	keys := []string{e.SecurityKey}
	for i := 1; i < racers; i++ {
		keys = append(keys, e.NewKey(t, fmt.Sprintf("security-%d", i), api.RoleSecurityAdmin))
	}
	c := e.create(t, githubInput("race-activate"))
	codes := race(t, e, racers, func(i int) testkit.Request {
		return testkit.Request{Method: http.MethodPut, Path: "/v1/workload-connections/" + c.ID + "/status", Key: keys[i],
			Body: api.StatusChange{Status: api.StatusActive, ApprovedFingerprint: c.Fingerprint}}
	})
	if codes[200]+codes[409] != racers || codes[200] == 0 {
		t.Errorf("status codes %v, want only 200 (at least one) and 409", codes)
	}
	got := e.get(t, c.ID)
	if got.Status != api.StatusActive || got.Revision != 2 {
		t.Errorf("after racing activations: %s rev %d, want active rev 2", got.Status, got.Revision)
	}
	if n := successEvents(e.auditOf(t, c.ID), api.ActionConnectionStatus); n != 1 {
		t.Errorf("%d status events, want 1", n)
	}
}

func TestConcurrentDeleteAndActivate_NeverBoth(t *testing.T) {
	e := start(t)
	for i := range 5 {
		c := e.create(t, githubInput(fmt.Sprintf("race-del-%d", i)))
		var del, act testkit.Response
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			del = e.Do(t, testkit.Request{Method: http.MethodDelete, Path: "/v1/workload-connections/" + c.ID, Key: e.DevOpsKey})
		}()
		go func() {
			defer wg.Done()
			act = e.Do(t, testkit.Request{Method: http.MethodPut, Path: "/v1/workload-connections/" + c.ID + "/status", Key: e.SecurityKey,
				Body: api.StatusChange{Status: api.StatusActive}})
		}()
		wg.Wait()
		if del.Status == 204 && act.Status == 200 {
			t.Errorf("%s: both the devops delete (204) and the activation (200) succeeded", c.Name)
		}
		g := e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/v1/workload-connections/" + c.ID, Key: e.AuditorKey})
		switch {
		case del.Status == 204 && g.Status != 404:
			t.Errorf("%s: deleted but readable (%d)", c.Name, g.Status)
		case act.Status == 200 && g.Status != 200:
			t.Errorf("%s: activated but not readable (%d)", c.Name, g.Status)
		}
	}
}

// TestConcurrentProposals_OneProposalWinsPerRevision: racing proposals on an active connection
// with the same If-Match: exactly one is stored, the others get 412, and nothing live moves.
func TestConcurrentProposals_OneProposalWinsPerRevision(t *testing.T) {
	e := start(t)
	c := e.inStatus(t, "race-proposals", api.StatusActive)
	codes := race(t, e, racers, func(i int) testkit.Request {
		return testkit.Request{Method: http.MethodPatch, Path: "/v1/workload-connections/" + c.ID, Key: e.DevOpsKey,
			ContentType: "application/merge-patch+json", Body: map[string]any{"github": map[string]any{"ref": fmt.Sprintf("refs/heads/w%d", i)}},
			Header: http.Header{"If-Match": {etag(c.Revision)}}}
	})
	if codes[202] != 1 || codes[412] != racers-1 {
		t.Errorf("status codes %v, want one 202 and %d × 412", codes, racers-1)
	}
	got := e.get(t, c.ID)
	if got.Revision != c.Revision+1 || got.Proposal == nil || got.Fingerprint != c.Fingerprint {
		t.Errorf("after the race: revision %d, proposal %v, live fingerprint moved %v", got.Revision, got.Proposal != nil, got.Fingerprint != c.Fingerprint)
	}
	if n := successEvents(e.auditOf(t, c.ID), api.ActionConnectionPropose); n != 1 {
		t.Errorf("%d propose events, want 1", n)
	}
}

// TestApprovalRacingNewProposals: a security admin approves the fingerprint she reviewed while
// devops admins keep proposing other changes. Whatever the interleaving, the approval either makes
// exactly the reviewed configuration live (200) or changes nothing live (409).
func TestApprovalRacingNewProposals(t *testing.T) {
	e := start(t)
	c := e.inStatus(t, "race-approval", api.StatusActive)
	first, err := e.DevOps.PatchConnection(ctx, c.ID, map[string]any{"github": map[string]any{"ref": "refs/heads/reviewed"}}, 0)
	if err != nil || first.Proposal == nil {
		t.Fatalf("first proposal: %v", err)
	}
	reviewed := first.Proposal.Fingerprint
	codes := race(t, e, racers, func(i int) testkit.Request {
		if i == 0 {
			return testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections/" + c.ID + "/proposal/approve", Key: e.SecurityKey,
				Body: api.ProposalApproval{ApprovedFingerprint: reviewed}}
		}
		return testkit.Request{Method: http.MethodPatch, Path: "/v1/workload-connections/" + c.ID, Key: e.DevOpsKey,
			ContentType: "application/merge-patch+json", Body: map[string]any{"github": map[string]any{"ref": fmt.Sprintf("refs/heads/other%d", i)}}}
	})
	got := e.get(t, c.ID)
	switch got.Fingerprint {
	case c.Fingerprint: // the approval lost: nothing live moved
		if codes[200] != 0 {
			t.Errorf("the live configuration did not move but an approval answered 200 (codes %v)", codes)
		}
	case reviewed:
		if codes[200] != 1 {
			t.Errorf("the reviewed configuration is live, codes %v: want exactly one 200", codes)
		}
	default:
		t.Fatalf("live fingerprint %s is neither the old one nor the reviewed one: an unreviewed proposal went live", got.Fingerprint)
	}
	for code := range codes {
		if code != 200 && code != 202 && code != 409 {
			t.Errorf("unexpected status %d in %v", code, codes)
		}
	}
}
