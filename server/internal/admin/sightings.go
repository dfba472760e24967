package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/sightings"
)

// SightingStorer reads the workloads seen on a connection (CONTRACT.md §3, workload sightings).
// *store.Store implements it; storeerr.ErrBadCursor for a cursor it did not produce.
type SightingStorer interface {
	// ListSightings reads a page of one connection's sightings, newest first, and the next cursor.
	ListSightings(ctx context.Context, f sightings.Filter) ([]api.Sighting, string, error)
	// RecentSightings reads a connection's sightings last seen at or after since, newest first, at
	// most limit, with only the top-level claims in keep decoded (nil: all).
	RecentSightings(ctx context.Context, connectionID string, since time.Time, limit int, keep map[string]bool) ([]api.Sighting, error)
}

func (s *Service) retention() time.Duration {
	if s.SightingsRetention > 0 {
		return s.SightingsRetention
	}
	return sightings.DefaultRetention
}

// ListSightings reads a page of the workloads seen on a connection within the retention, newest
// first. Every role may read them.
func (s *Service) ListSightings(ctx context.Context, a Actor, ref string, limit int, cursor string) ([]api.Sighting, string, error) {
	if err := connection.Authorize(a.Role, connection.ActionRead, nil); err != nil {
		return nil, "", err
	}
	c, err := s.Store.GetConnection(ctx, ref)
	if err != nil {
		return nil, "", translate(err)
	}
	// Since hides what retention has not removed yet: the list never shows more than it promises.
	items, next, err := s.Sightings.ListSightings(ctx, sightings.Filter{ConnectionID: c.ID,
		Since: s.now().Add(-s.retention()), Limit: limit, Cursor: cursor})
	if items == nil {
		items = []api.Sighting{}
	}
	return items, next, translate(err)
}

// DefaultImpactWindow is the window of an impact report that names none (CONTRACT.md §3), or the
// retention when that is shorter.
const DefaultImpactWindow = 720 * time.Hour

// Impact reports what a configuration would change for the workloads seen on a connection in the
// window (0: the default): patch is a JSON merge patch on the live configuration, validated like a
// create, or `{}` for the pending proposal (404 when there is none). Nothing changes, and nothing
// is audited: the report is a read of what every role may read (the connection and its
// sightings), like GET.
func (s *Service) Impact(ctx context.Context, a Actor, ref string, patch []byte, window time.Duration) (*api.ImpactReport, error) {
	cur, err := s.Store.GetConnection(ctx, ref)
	if err != nil {
		return nil, translate(err)
	}
	if err := connection.Authorize(a.Role, connection.ActionImpact, cur); err != nil {
		return nil, err
	}
	if window, err = s.impactWindow(window); err != nil {
		return nil, err
	}
	var proposed api.ConnectionInput
	if emptyObject(patch) {
		p, ok := cur.Config(true)
		if !ok {
			return nil, connection.NotFound(fmt.Sprintf("connection %s has no pending proposal: send the change to evaluate as a merge patch on the live configuration, or propose it first", cur.Spec.Name))
		}
		proposed = p
	} else {
		merged, err := connection.ApplyMergePatch(cur.Spec, patch)
		if err != nil {
			return nil, err
		}
		if proposed, err = connection.Normalize(merged, s.Opts); err != nil {
			return nil, err
		}
	}
	// Only the claims either configuration reads are decoded: at the cap of 10,000 sightings that
	// is most of the report's time (BENCHMARKS.md).
	seen, err := s.Sightings.RecentSightings(ctx, cur.ID, s.now().Add(-window), sightings.DefaultMaxPerConnection,
		sightings.ClaimsRead(s.Opts, cur.Spec, proposed))
	if err != nil {
		return nil, err
	}
	rep := sightings.Impact(cur.Spec, proposed, s.Opts, seen, window)
	if s.SightingsOff {
		rep.Caveats = append(rep.Caveats, CaveatSightingsOff)
	}
	return &rep, nil
}

// CaveatSightingsOff is the caveat of an impact report answered by a replica that records no
// sightings: what it lists was recorded by other replicas, or before recording was turned off.
const CaveatSightingsOff = "this server records no workload sightings (trustgate serve --sightings=false): workloads that exchanged only through it, or since recording was turned off, are missing from this report"

// impactWindow checks a requested window: positive and within the retention (older sightings are
// gone, so a longer window would promise what the report cannot show).
func (s *Service) impactWindow(window time.Duration) (time.Duration, error) {
	ret := s.retention()
	if window == 0 {
		return min(DefaultImpactWindow, ret), nil
	}
	if window < 0 || window > ret {
		return 0, connection.ValidationDetail(
			fmt.Sprintf("window must be a positive duration of at most %s, how long this server keeps workload sightings (e.g. ?window=168h)", sightings.FormatWindow(ret)),
			api.FieldError{Field: "window", Detail: "must be positive and at most " + sightings.FormatWindow(ret)})
	}
	return window, nil
}

// emptyObject reports whether body is the JSON object {} (whitespace aside).
func emptyObject(body []byte) bool {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return false
	}
	var m map[string]json.RawMessage
	return json.Unmarshal(body, &m) == nil && len(m) == 0
}
