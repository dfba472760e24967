package admin_test

import (
	"context"
	"errors"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/admin"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storeerr"
)

// racingStore is the real store with another request's write landing between the use case's read
// and its conditional write: before runs once, just before the next UpdateConnection or
// DeleteConnection. It decides the interleaving; the database is real.
type racingStore struct {
	admin.Storer
	before func()
}

func (r *racingStore) race() {
	if f := r.before; f != nil {
		r.before = nil
		f()
	}
}

func (r *racingStore) UpdateConnection(ctx context.Context, c *connection.Connection, expected int64, ev *api.AuditEvent) error {
	r.race()
	return r.Storer.UpdateConnection(ctx, c, expected, ev)
}

func (r *racingStore) DeleteConnection(ctx context.Context, id string, expected int64, ev *api.AuditEvent) error {
	r.race()
	return r.Storer.DeleteConnection(ctx, id, expected, ev)
}

// bumpFirst makes another request's change to c land first: its revision moves on.
func (f *fixture) bumpFirst(t *testing.T, c *connection.Connection) {
	f.races.before = func() {
		next := *c
		next.Revision++
		if err := f.st.UpdateConnection(context.Background(), &next, c.Revision, nil); err != nil {
			t.Errorf("the competing update: %v", err)
		}
	}
}

// deleteFirst makes another request delete c first.
func (f *fixture) deleteFirst(t *testing.T, c *connection.Connection) {
	f.races.before = func() {
		if err := f.st.DeleteConnection(context.Background(), c.ID, c.Revision, nil); err != nil {
			t.Errorf("the competing delete: %v", err)
		}
	}
}

// No error the store reports reaches the caller as a store error: each comes back as a refusal
// of the connection domain whose Kind says how to answer.
func TestStoreOutcomesComeBackAsDomainRefusals(t *testing.T) {
	ctx := context.Background()
	patch := []byte(`{"github":{"repository":"octo-org/other"}}`)
	tests := []struct {
		name    string
		run     func(t *testing.T, f *fixture) error
		kind    connection.Kind
		field   string // the invalid field the refusal names, if any
		is      error  // the exported refusal it is, if any
		audited string // the refused action audited, if any (refused reads are not)
	}{{
		name: "get of an unknown ref", kind: connection.KindNotFound, is: admin.ErrNotFound,
		run: func(t *testing.T, f *fixture) error { _, err := f.svc.Get(ctx, ada, "nope"); return err },
	}, {
		name: "update of an unknown ref", kind: connection.KindNotFound, is: admin.ErrNotFound, audited: api.ActionConnectionUpdate,
		run: func(t *testing.T, f *fixture) error {
			_, _, err := f.svc.Update(ctx, dana, "nope", patch, nil, meta)
			return err
		},
	}, {
		name: "delete of an unknown ref", kind: connection.KindNotFound, is: admin.ErrNotFound, audited: api.ActionConnectionDelete,
		run: func(t *testing.T, f *fixture) error { return f.svc.Delete(ctx, dana, "nope", nil, meta) },
	}, {
		name: "status of an unknown ref", kind: connection.KindNotFound, is: admin.ErrNotFound, audited: api.ActionConnectionStatus,
		run: func(t *testing.T, f *fixture) error {
			_, err := f.svc.SetStatus(ctx, sam, "nope", api.StatusChange{Status: api.StatusActive}, nil, meta)
			return err
		},
	}, {
		name: "test against an unknown ref", kind: connection.KindNotFound, is: admin.ErrNotFound, audited: api.ActionConnectionTest,
		run: func(t *testing.T, f *fixture) error {
			_, err := f.svc.Test(ctx, dana, "nope", "x.y.z", false, meta)
			return err
		},
	}, {
		name: "create with a taken name", kind: connection.KindConflict, field: "name", audited: api.ActionConnectionCreate,
		run: func(t *testing.T, f *fixture) error {
			_, err := f.svc.Create(ctx, dave, f.input("deploy"), meta)
			return err
		},
	}, {
		name: "rename onto a taken name", kind: connection.KindConflict, field: "name", audited: api.ActionConnectionUpdate,
		run: func(t *testing.T, f *fixture) error {
			f.create(t, "other")
			_, _, err := f.svc.Update(ctx, dana, "other", []byte(`{"name":"deploy"}`), nil, meta)
			return err
		},
	}, {
		name: "list with a cursor this server did not issue", kind: connection.KindValidation, field: "cursor",
		run: func(t *testing.T, f *fixture) error {
			_, _, err := f.svc.List(ctx, ada, connection.Filter{Cursor: "bm90LWEtY3Vyc29y"})
			return err
		},
	}, {
		name: "audit list with a connection-list cursor", kind: connection.KindValidation, field: "cursor",
		run: func(t *testing.T, f *fixture) error {
			f.create(t, "zulu")
			_, next, err := f.svc.List(ctx, ada, connection.Filter{Limit: 1})
			if err != nil || next == "" {
				t.Fatalf("list: next %q, %v", next, err)
			}
			_, _, err = f.svc.ListAudit(ctx, sam, connection.AuditFilter{Cursor: next})
			return err
		},
	}, {
		name: "update with If-Match that loses a race", kind: connection.KindPrecondition, is: admin.ErrPrecondition,
		audited: api.ActionConnectionUpdate,
		run: func(t *testing.T, f *fixture) error {
			c, _ := f.svc.Get(ctx, ada, "deploy")
			f.bumpFirst(t, c)
			_, _, err := f.svc.Update(ctx, dana, "deploy", patch, &c.Revision, meta)
			return err
		},
	}, {
		name: "update without If-Match that loses a race", kind: connection.KindConflict, audited: api.ActionConnectionUpdate,
		run: func(t *testing.T, f *fixture) error {
			c, _ := f.svc.Get(ctx, ada, "deploy")
			f.bumpFirst(t, c)
			_, _, err := f.svc.Update(ctx, dana, "deploy", patch, nil, meta)
			return err
		},
	}, {
		name: "activation that loses a race", kind: connection.KindConflict, audited: api.ActionConnectionStatus,
		run: func(t *testing.T, f *fixture) error {
			c, _ := f.svc.Get(ctx, ada, "deploy")
			f.bumpFirst(t, c)
			_, err := f.svc.SetStatus(ctx, sam, "deploy", api.StatusChange{Status: api.StatusActive}, nil, meta)
			return err
		},
	}, {
		name: "delete with If-Match that loses a race", kind: connection.KindPrecondition, is: admin.ErrPrecondition,
		audited: api.ActionConnectionDelete,
		run: func(t *testing.T, f *fixture) error {
			c, _ := f.svc.Get(ctx, ada, "deploy")
			f.bumpFirst(t, c)
			return f.svc.Delete(ctx, dana, "deploy", &c.Revision, meta)
		},
	}, {
		name: "update of a connection deleted meanwhile", kind: connection.KindNotFound, is: admin.ErrNotFound,
		audited: api.ActionConnectionUpdate,
		run: func(t *testing.T, f *fixture) error {
			c, _ := f.svc.Get(ctx, ada, "deploy")
			f.deleteFirst(t, c)
			_, _, err := f.svc.Update(ctx, dana, "deploy", patch, nil, meta)
			return err
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.create(t, "deploy")
			before := len(f.events(t))
			err := tc.run(t, f)
			de := wantKind(t, err, tc.kind)
			for _, sentinel := range []error{storeerr.ErrNotFound, storeerr.ErrDuplicateName, storeerr.ErrRevisionMismatch, storeerr.ErrBadCursor} {
				if errors.Is(err, sentinel) {
					t.Errorf("the refusal still is the store's %v", sentinel)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error = %v, want %v", err, tc.is)
			}
			if tc.field != "" && (len(de.Fields) != 1 || de.Fields[0].Field != tc.field) {
				t.Errorf("refusal fields = %+v, want one naming %q", de.Fields, tc.field)
			}
			if de.Detail == "" {
				t.Error("the refusal has no detail to show the user")
			}
			evs := f.events(t)
			if tc.audited != "" {
				if len(evs) <= before || evs[0].Action != tc.audited || evs[0].Outcome != api.OutcomeDenied || evs[0].Reason == "" {
					t.Errorf("the refusal was not audited as %s denied (newest event %+v)", tc.audited, evs[0])
				}
			}
			if tc.audited == "" {
				for _, ev := range evs {
					if ev.Outcome == api.OutcomeDenied {
						t.Errorf("a refused read was audited: %+v", ev)
					}
				}
			}
		})
	}
}
