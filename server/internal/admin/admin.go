// Package admin carries out the admin API's use cases on workload connections: create, read, list,
// update, delete, change status, test a CI token, and list the audit trail. It loads the current
// state, asks the connection domain what is allowed, writes the change and its audit event in one
// transaction, and records refusals. It knows nothing of HTTP: the httpapi handlers translate
// requests into these calls and the returned errors into problem+json.
//
// # The boundary
//
// admin declares what it needs and nothing more: Storer, the connections and the audit trail as
// stored (*store.Store implements it), and Recorder, the durable audit trail for refusals and
// tests (*audit.Writer implements it). server/app wires the concrete types in; admin never
// imports the store. It recognises what the store reports by the values of package storeerr and
// translates them into *connection.Error here (errors.go), so that every error a use case returns
// is either a domain refusal whose Kind says how to answer, or an internal failure (the database
// is down, a bug).
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/audit"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/broker"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

// Storer is the storage of connections and their audit trail. Errors wrap the values of package
// storeerr where the method says so; admin translates them (errors.go).
type Storer interface {
	// CreateConnection stores a new connection (filling in its id) and appends ev in the same
	// transaction. storeerr.ErrDuplicateName when the name is taken.
	CreateConnection(ctx context.Context, c *connection.Connection, ev *api.AuditEvent) error
	// GetConnection reads a connection by id or name; storeerr.ErrNotFound when there is none.
	GetConnection(ctx context.Context, ref string) (*connection.Connection, error)
	// ListConnections reads a page and the cursor of the next ("" on the last page);
	// storeerr.ErrBadCursor for a cursor it did not produce.
	ListConnections(ctx context.Context, f connection.Filter) ([]connection.Connection, string, error)
	// UpdateConnection writes c if the stored revision is still expectedRevision and appends ev
	// in the same transaction: storeerr.ErrRevisionMismatch when it has moved on,
	// storeerr.ErrNotFound when the connection is gone, storeerr.ErrDuplicateName on a clashing
	// rename.
	UpdateConnection(ctx context.Context, c *connection.Connection, expectedRevision int64, ev *api.AuditEvent) error
	// DeleteConnection deletes the connection if its revision is still expectedRevision and
	// appends ev in the same transaction; the same errors as UpdateConnection.
	DeleteConnection(ctx context.Context, id string, expectedRevision int64, ev *api.AuditEvent) error
	// ListAudit reads a page of audit events, newest first, and the cursor of the next;
	// storeerr.ErrBadCursor for a cursor it did not produce.
	ListAudit(ctx context.Context, f connection.AuditFilter) ([]api.AuditEvent, string, error)
}

// Recorder records an audit event durably: when Record returns nil the event is committed.
// *audit.Writer implements it.
type Recorder interface {
	Record(ctx context.Context, ev api.AuditEvent) error
}

// Actor is the authenticated principal behind a request.
type Actor struct {
	Name string
	Role string
}

// Service runs the connection use cases.
type Service struct {
	Store Storer
	Opts  connection.Options
	// Audit records refusals and tests (changes that succeed are audited inside their own
	// transaction, through Store).
	Audit Recorder
	// Changed is called after every committed change so this replica's caches catch up at once
	// instead of waiting for the next poll.
	Changed func()
	// Broker evaluates tokens for the test endpoint (the same verifier as the exchange).
	Broker *broker.Broker
	Now    func() time.Time
	// Sightings reads the workloads seen (sightings.go); SightingsRetention is how long they are
	// kept, the longest impact window (default sightings.DefaultRetention).
	Sightings          SightingStorer
	SightingsRetention time.Duration
	// SightingsOff: this replica records no sightings (`serve --sightings=false`); its impact
	// reports carry a caveat saying so.
	SightingsOff bool
	// Activity counts token exchanges for the review console (activity.go).
	Activity ActivityReader
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) changed() {
	if s.Changed != nil {
		s.Changed()
	}
}

// Create creates a draft connection.
func (s *Service) Create(ctx context.Context, a Actor, in api.ConnectionInput, m audit.Meta) (*connection.Connection, error) {
	c, err := s.create(ctx, a, in, m)
	if err != nil {
		s.refused(ctx, a, api.ActionConnectionCreate, &connection.Connection{Spec: in}, in.Name, m, err)
	}
	return c, translate(err)
}

func (s *Service) create(ctx context.Context, a Actor, in api.ConnectionInput, m audit.Meta) (*connection.Connection, error) {
	if err := connection.Authorize(a.Role, connection.ActionCreate, nil); err != nil {
		return nil, err
	}
	spec, err := connection.Normalize(in, s.Opts)
	if err != nil {
		return nil, err
	}
	now := s.now()
	c := &connection.Connection{
		ID: uuid.NewString(), Spec: spec, Status: api.StatusDraft, Revision: 1,
		CreatedBy: a.Name, UpdatedBy: a.Name, ConfigChangedBy: a.Name, CreatedAt: now, UpdatedAt: now,
	}
	ev := s.event(a, api.ActionConnectionCreate, c, m, map[string]any{"revision": c.Revision, "fingerprint": connection.Resolve(spec, s.Opts).Fingerprint})
	if err := s.Store.CreateConnection(ctx, c, ev); err != nil {
		return nil, err
	}
	s.changed()
	return c, nil
}

// Get reads a connection by id or name; every role may read.
func (s *Service) Get(ctx context.Context, a Actor, ref string) (*connection.Connection, error) {
	if err := connection.Authorize(a.Role, connection.ActionRead, nil); err != nil {
		return nil, err
	}
	c, err := s.Store.GetConnection(ctx, ref)
	return c, translate(err)
}

// List reads a page of connections.
func (s *Service) List(ctx context.Context, a Actor, f connection.Filter) ([]connection.Connection, string, error) {
	if err := connection.Authorize(a.Role, connection.ActionRead, nil); err != nil {
		return nil, "", err
	}
	conns, next, err := s.Store.ListConnections(ctx, f)
	return conns, next, translate(err)
}

// Update applies a JSON merge patch (CONTRACT.md §1, change control). Before the connection's
// first activation the patch changes it in place; afterwards the result is stored as the
// connection's proposal and nothing live changes (proposed is true: the API answers 202), or,
// when the result equals the live configuration, the pending proposal is discarded. ifMatch, when
// not nil, must equal the current revision.
func (s *Service) Update(ctx context.Context, a Actor, ref string, patch []byte, ifMatch *int64, m audit.Meta) (c *connection.Connection, proposed bool, err error) {
	cur, err := s.Store.GetConnection(ctx, ref)
	if err != nil {
		s.refused(ctx, a, api.ActionConnectionUpdate, nil, ref, m, err)
		return nil, false, translate(err)
	}
	c, proposed, err = s.update(ctx, a, cur, patch, ifMatch, m)
	if err != nil {
		s.refused(ctx, a, patchAuditAction(cur), cur, ref, m, err)
	}
	return c, proposed, translate(err)
}

// patchAuditAction is the audit action of a PATCH of c: an update of a draft, a proposal after.
func patchAuditAction(c *connection.Connection) string {
	if connection.PatchAction(c) == connection.ActionPropose {
		return api.ActionConnectionPropose
	}
	return api.ActionConnectionUpdate
}

func (s *Service) update(ctx context.Context, a Actor, cur *connection.Connection, patch []byte, ifMatch *int64, m audit.Meta) (*connection.Connection, bool, error) {
	if err := connection.Authorize(a.Role, connection.PatchAction(cur), cur); err != nil {
		return nil, false, err
	}
	if ifMatch != nil && *ifMatch != cur.Revision {
		return nil, false, ErrPrecondition
	}
	plan, err := connection.PlanPatch(cur, patch, s.Opts)
	if err != nil {
		return nil, false, err
	}
	if plan.Kind == connection.PatchNoop {
		return cur, cur.Proposal != nil && connection.SameConfig(plan.Spec, cur.Proposal.Spec), nil
	}
	now := s.now()
	next := *cur
	next.Revision = cur.Revision + 1
	next.UpdatedBy, next.UpdatedAt = a.Name, now
	liveFP := connection.Resolve(cur.Spec, s.Opts).Fingerprint
	var ev *api.AuditEvent
	switch plan.Kind {
	case connection.PatchLive:
		next.Spec = plan.Spec
		if connection.ConfigChanged(cur.Spec, plan.Spec, s.Opts) {
			next.ConfigChangedBy = a.Name
		}
		ev = s.event(a, api.ActionConnectionUpdate, &next, m, map[string]any{
			"revision": next.Revision, "fingerprint": connection.Resolve(plan.Spec, s.Opts).Fingerprint,
			"previous_fingerprint": liveFP,
		})
	case connection.PatchPropose:
		next.Proposal = &connection.Proposal{Spec: plan.Spec, ProposedBy: a.Name, ProposedAt: now}
		ev = s.event(a, api.ActionConnectionPropose, &next, m, map[string]any{
			"revision": next.Revision, "fingerprint": connection.Resolve(plan.Spec, s.Opts).Fingerprint,
			"live_fingerprint": liveFP,
		})
	case connection.PatchDiscard:
		next.Proposal = nil
		ev = s.event(a, api.ActionConnectionDiscard, &next, m, map[string]any{
			"revision": next.Revision, "fingerprint": connection.Resolve(cur.Proposal.Spec, s.Opts).Fingerprint,
			"proposed_by": cur.Proposal.ProposedBy, "reason": "a change back to the live configuration",
		})
	}
	if err := s.Store.UpdateConnection(ctx, &next, cur.Revision, ev); err != nil {
		return nil, false, raced(err, ifMatch)
	}
	s.changed()
	return &next, plan.Kind == connection.PatchPropose, nil
}

// ApproveProposal makes the pending proposal of an activated connection live: a security admin
// who did not write it, naming its fingerprint (CONTRACT.md §1). The status stays as it is.
func (s *Service) ApproveProposal(ctx context.Context, a Actor, ref string, req api.ProposalApproval, ifMatch *int64, m audit.Meta) (*connection.Connection, error) {
	cur, err := s.Store.GetConnection(ctx, ref)
	if err != nil {
		s.refused(ctx, a, api.ActionConnectionApprove, nil, ref, m, err)
		return nil, translate(err)
	}
	c, err := s.approve(ctx, a, cur, req, ifMatch, m)
	if err != nil {
		s.refused(ctx, a, api.ActionConnectionApprove, cur, ref, m, err)
	}
	return c, translate(err)
}

func (s *Service) approve(ctx context.Context, a Actor, cur *connection.Connection, req api.ProposalApproval, ifMatch *int64, m audit.Meta) (*connection.Connection, error) {
	if err := connection.Authorize(a.Role, connection.ActionApprove, cur); err != nil {
		return nil, err
	}
	if ifMatch != nil && *ifMatch != cur.Revision {
		return nil, ErrPrecondition
	}
	if err := connection.CheckApprove(cur, a.Name, req.ApprovedFingerprint, s.Opts); err != nil {
		return nil, err
	}
	next := connection.Approve(cur, a.Name, s.now(), s.Opts)
	ev := s.event(a, api.ActionConnectionApprove, &next, m, map[string]any{
		"revision": next.Revision, "fingerprint": req.ApprovedFingerprint,
		"previous_fingerprint": connection.Resolve(cur.Spec, s.Opts).Fingerprint,
		"proposed_by":          cur.Proposal.ProposedBy, "status": next.Status,
	})
	// The write is conditional on the revision that was checked: a proposal replaced in between
	// makes it fail (409 or 412), so an approval applies exactly what was reviewed or nothing.
	if err := s.Store.UpdateConnection(ctx, &next, cur.Revision, ev); err != nil {
		return nil, raced(err, ifMatch)
	}
	s.changed()
	return &next, nil
}

// DiscardProposal drops the pending proposal: its author, or any security admin.
func (s *Service) DiscardProposal(ctx context.Context, a Actor, ref string, ifMatch *int64, m audit.Meta) error {
	cur, err := s.Store.GetConnection(ctx, ref)
	if err != nil {
		s.refused(ctx, a, api.ActionConnectionDiscard, nil, ref, m, err)
		return translate(err)
	}
	if err := s.discard(ctx, a, cur, ifMatch, m); err != nil {
		s.refused(ctx, a, api.ActionConnectionDiscard, cur, ref, m, err)
		return translate(err)
	}
	return nil
}

func (s *Service) discard(ctx context.Context, a Actor, cur *connection.Connection, ifMatch *int64, m audit.Meta) error {
	if err := connection.Authorize(a.Role, connection.ActionDiscard, cur); err != nil {
		return err
	}
	if ifMatch != nil && *ifMatch != cur.Revision {
		return ErrPrecondition
	}
	if err := connection.CheckDiscard(cur, a.Role, a.Name); err != nil {
		return err
	}
	next := *cur
	next.Proposal = nil
	next.Revision = cur.Revision + 1
	next.UpdatedBy, next.UpdatedAt = a.Name, s.now()
	ev := s.event(a, api.ActionConnectionDiscard, &next, m, map[string]any{
		"revision": next.Revision, "fingerprint": connection.Resolve(cur.Proposal.Spec, s.Opts).Fingerprint,
		"proposed_by": cur.Proposal.ProposedBy,
	})
	if err := s.Store.UpdateConnection(ctx, &next, cur.Revision, ev); err != nil {
		return raced(err, ifMatch)
	}
	s.changed()
	return nil
}

// Delete removes a connection.
func (s *Service) Delete(ctx context.Context, a Actor, ref string, ifMatch *int64, m audit.Meta) error {
	cur, err := s.Store.GetConnection(ctx, ref)
	if err != nil {
		s.refused(ctx, a, api.ActionConnectionDelete, nil, ref, m, err)
		return translate(err)
	}
	if err := s.delete(ctx, a, cur, ifMatch, m); err != nil {
		s.refused(ctx, a, api.ActionConnectionDelete, cur, ref, m, err)
		return translate(err)
	}
	return nil
}

func (s *Service) delete(ctx context.Context, a Actor, cur *connection.Connection, ifMatch *int64, m audit.Meta) error {
	if err := connection.Authorize(a.Role, connection.ActionDelete, cur); err != nil {
		return err
	}
	if ifMatch != nil && *ifMatch != cur.Revision {
		return ErrPrecondition
	}
	ev := s.event(a, api.ActionConnectionDelete, cur, m, map[string]any{"revision": cur.Revision, "status": cur.Status})
	if err := s.Store.DeleteConnection(ctx, cur.ID, cur.Revision, ev); err != nil {
		return raced(err, ifMatch)
	}
	s.changed()
	return nil
}

// SetStatus activates or deactivates a connection.
func (s *Service) SetStatus(ctx context.Context, a Actor, ref string, req api.StatusChange, ifMatch *int64, m audit.Meta) (*connection.Connection, error) {
	cur, err := s.Store.GetConnection(ctx, ref)
	if err != nil {
		s.refused(ctx, a, api.ActionConnectionStatus, nil, ref, m, err)
		return nil, translate(err)
	}
	c, err := s.setStatus(ctx, a, cur, req, ifMatch, m)
	if err != nil {
		s.refused(ctx, a, api.ActionConnectionStatus, cur, ref, m, err)
	}
	return c, translate(err)
}

func (s *Service) setStatus(ctx context.Context, a Actor, cur *connection.Connection, req api.StatusChange, ifMatch *int64, m audit.Meta) (*connection.Connection, error) {
	if err := connection.Authorize(a.Role, connection.ActionSetStatus, cur); err != nil {
		return nil, err
	}
	if ifMatch != nil && *ifMatch != cur.Revision {
		return nil, ErrPrecondition
	}
	fp := connection.Resolve(cur.Spec, s.Opts).Fingerprint
	changed, err := connection.CheckStatusChange(cur, a.Name, req, fp)
	if err != nil || !changed {
		return cur, err
	}
	next := connection.WithStatus(cur, a.Name, req.Status, s.now())
	ev := s.event(a, api.ActionConnectionStatus, &next, m, map[string]any{
		"from": cur.Status, "to": next.Status, "fingerprint": fp, "revision": next.Revision,
	})
	if err := s.Store.UpdateConnection(ctx, &next, cur.Revision, ev); err != nil {
		return nil, raced(err, ifMatch)
	}
	s.changed()
	return &next, nil
}

// Test evaluates a CI token against a connection in any status, or against its pending proposal
// when proposal is true (404 when there is none), and issues nothing. The test is audited
// (connection.test), and so is a refusal.
func (s *Service) Test(ctx context.Context, a Actor, ref, token string, proposal bool, m audit.Meta) (*api.TestResult, error) {
	cur, err := s.Store.GetConnection(ctx, ref)
	if err == nil {
		err = connection.Authorize(a.Role, connection.ActionTest, cur)
	}
	var spec api.ConnectionInput
	if err == nil {
		var ok bool
		if spec, ok = cur.Config(proposal); !ok {
			err = connection.NotFound(fmt.Sprintf("connection %s has no pending proposal to test: test the live configuration without ?config=proposal", cur.Spec.Name))
		}
	}
	if err != nil {
		s.refused(ctx, a, api.ActionConnectionTest, cur, ref, m, err)
		return nil, translate(err)
	}
	tested := *cur
	tested.Spec = spec
	res := s.Broker.Test(ctx, broker.NewEntry(tested, s.Opts), token)
	detail := map[string]any{"would_issue": res.WouldIssue, "revision": cur.Revision}
	if proposal {
		detail["config"] = "proposal"
	}
	ev := s.event(a, api.ActionConnectionTest, cur, m, detail)
	if err := s.Audit.Record(ctx, *ev); err != nil {
		return nil, err
	}
	return res, nil
}

// ListAudit reads a page of audit events: a devops admin sees only their own actions.
func (s *Service) ListAudit(ctx context.Context, a Actor, f connection.AuditFilter) ([]api.AuditEvent, string, error) {
	if err := connection.Authorize(a.Role, connection.ActionReadAudit, nil); err != nil {
		return nil, "", err
	}
	f.Actor = connection.AuditActorFilter(a.Role, a.Name)
	evs, next, err := s.Store.ListAudit(ctx, f)
	if evs == nil {
		evs = []api.AuditEvent{}
	}
	return evs, next, translate(err)
}

func (s *Service) event(a Actor, action string, c *connection.Connection, m audit.Meta, detail map[string]any) *api.AuditEvent {
	return &api.AuditEvent{
		ID: uuid.NewString(), Time: s.now(), Actor: a.Name, Action: action,
		ConnectionID: c.ID, ConnectionName: c.Spec.Name, Outcome: api.OutcomeSuccess,
		RequestID: m.RequestID, RemoteAddr: m.RemoteAddr, Detail: detail,
	}
}

// refused audits a refused change. Auditing is best effort here: the refusal itself already
// failed closed, and an audit-store outage must not turn a 403 into a 500.
func (s *Service) refused(ctx context.Context, a Actor, action string, c *connection.Connection, ref string, m audit.Meta, cause error) {
	if s.Audit == nil {
		return
	}
	ev := api.AuditEvent{Actor: a.Name, Action: action, Outcome: api.OutcomeDenied, Reason: cause.Error(),
		RequestID: m.RequestID, RemoteAddr: m.RemoteAddr, ConnectionName: ref}
	if c != nil {
		ev.ConnectionID = c.ID
		if c.Spec.Name != "" {
			ev.ConnectionName = c.Spec.Name
		}
	}
	var de *connection.Error
	if errors.As(cause, &de) && len(de.Fields) > 0 {
		b, _ := json.Marshal(de.Fields)
		var fields any
		_ = json.Unmarshal(b, &fields)
		ev.Detail = map[string]any{"errors": fields}
	}
	if err := s.Audit.Record(ctx, ev); err != nil {
		slog.WarnContext(ctx, "could not audit a refused change", "action", action, "request_id", m.RequestID, "error", err)
	}
}
