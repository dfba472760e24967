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
	"log/slog"
	"reflect"
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

// Update applies a JSON merge patch. ifMatch, when not nil, must equal the current revision.
func (s *Service) Update(ctx context.Context, a Actor, ref string, patch []byte, ifMatch *int64, m audit.Meta) (*connection.Connection, error) {
	cur, err := s.Store.GetConnection(ctx, ref)
	if err != nil {
		s.refused(ctx, a, api.ActionConnectionUpdate, nil, ref, m, err)
		return nil, translate(err)
	}
	c, err := s.update(ctx, a, cur, patch, ifMatch, m)
	if err != nil {
		s.refused(ctx, a, api.ActionConnectionUpdate, cur, ref, m, err)
	}
	return c, translate(err)
}

func (s *Service) update(ctx context.Context, a Actor, cur *connection.Connection, patch []byte, ifMatch *int64, m audit.Meta) (*connection.Connection, error) {
	if err := connection.Authorize(a.Role, connection.ActionUpdate, cur); err != nil {
		return nil, err
	}
	if ifMatch != nil && *ifMatch != cur.Revision {
		return nil, ErrPrecondition
	}
	merged, err := connection.ApplyMergePatch(cur.Spec, patch)
	if err != nil {
		return nil, err
	}
	spec, err := connection.Normalize(merged, s.Opts)
	if err != nil {
		return nil, err
	}
	if err := connection.CheckUpdate(cur, spec); err != nil {
		return nil, err
	}
	if reflect.DeepEqual(spec, cur.Spec) {
		return cur, nil // nothing changed: no new revision, no audit noise
	}
	next := *cur
	next.Spec = spec
	next.Revision = cur.Revision + 1
	next.UpdatedBy, next.ConfigChangedBy, next.UpdatedAt = a.Name, a.Name, s.now()
	ev := s.event(a, api.ActionConnectionUpdate, &next, m, map[string]any{
		"revision": next.Revision, "fingerprint": connection.Resolve(spec, s.Opts).Fingerprint,
		"previous_fingerprint": connection.Resolve(cur.Spec, s.Opts).Fingerprint,
	})
	if err := s.Store.UpdateConnection(ctx, &next, cur.Revision, ev); err != nil {
		return nil, raced(err, ifMatch)
	}
	s.changed()
	return &next, nil
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
	now := s.now()
	next := *cur
	next.Status = req.Status
	next.Revision = cur.Revision + 1
	next.UpdatedBy, next.UpdatedAt = a.Name, now
	if req.Status == api.StatusActive {
		next.EverActivated = true
		next.ActivatedBy = a.Name
		next.ActivatedAt = &now
	}
	ev := s.event(a, api.ActionConnectionStatus, &next, m, map[string]any{
		"from": cur.Status, "to": next.Status, "fingerprint": fp, "revision": next.Revision,
	})
	if err := s.Store.UpdateConnection(ctx, &next, cur.Revision, ev); err != nil {
		return nil, raced(err, ifMatch)
	}
	s.changed()
	return &next, nil
}

// Test evaluates a CI token against a connection in any status and issues nothing. The test is
// audited (connection.test), and so is a refusal.
func (s *Service) Test(ctx context.Context, a Actor, ref, token string, m audit.Meta) (*api.TestResult, error) {
	cur, err := s.Store.GetConnection(ctx, ref)
	if err == nil {
		err = connection.Authorize(a.Role, connection.ActionTest, cur)
	}
	if err != nil {
		s.refused(ctx, a, api.ActionConnectionTest, cur, ref, m, err)
		return nil, translate(err)
	}
	res := s.Broker.Test(ctx, broker.NewEntry(*cur, s.Opts), token)
	ev := s.event(a, api.ActionConnectionTest, cur, m, map[string]any{"would_issue": res.WouldIssue, "revision": cur.Revision})
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
