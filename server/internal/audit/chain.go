package audit

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// Tamper evidence (CONTRACT.md §3; AWS CloudTrail's log file integrity is the model). Every event
// a server process writes is in that process's chain: chain (its name), seq (1, 2, … in commit
// order), prev_hash (the hash of seq-1; absent for seq 1) and hash (EventHash). Changing an event
// breaks its hash; removing or moving one breaks the numbering or the links. Anyone able to write
// the database could recompute a whole chain, so every 10 minutes and at shutdown the process
// signs the chain's newest (seq, hash) with its signing key, in an audit.checkpoint event: events
// up to a checkpoint cannot be rewritten without the key, and the signature checks with the
// public JWKS alone. AUDIT.md documents the bytes for independent verifiers.

// CheckpointType is the typ of a checkpoint's detached JWS header.
const CheckpointType = "trustgate-audit-checkpoint"

// CheckpointActor is the actor of checkpoint events: the server itself.
const CheckpointActor = "trustgate"

// Signer signs a checkpoint: a detached ES256 JWS over payload with the key that signs access
// tokens (signing.KeyRing implements it).
type Signer interface {
	SignDetached(typ string, payload []byte) (jws, kid string, err error)
}

// CheckpointPayload is the payload a checkpoint signs: the canonical JSON
// {"chain":<chain>,"hash":<hash>,"seq":<seq>} of the event it covers.
func CheckpointPayload(chain string, seq int64, hash string) []byte {
	b := make([]byte, 0, 160)
	b = append(b, `{"chain":`...)
	b = appendString(b, chain)
	b = append(b, `,"hash":`...)
	b = appendString(b, hash)
	b = append(b, `,"seq":`...)
	b = appendNumber(b, float64(seq))
	return append(b, '}')
}

// chainState is the writer's chain as committed.
type chainState struct {
	id    string
	seq   int64  // seq of the last committed event (0: none yet)
	last  string // its hash
	since int    // events committed since the last checkpoint
	// uncertain is the last batch when its commit failed: perhaps stored, perhaps not.
	uncertain     []api.AuditEvent
	uncertainLink link
}

// link is the chain as a batch being prepared extends it.
type link struct {
	id    string
	seq   int64
	prev  string
	since int
}

func (c *chainState) begin() link { return link{id: c.id, seq: c.seq, prev: c.last, since: c.since} }

func (c *chainState) commit(l link) { c.seq, c.last, c.since = l.seq, l.prev, l.since }

// add gives ev its place after the link's last event and its hash.
func (l *link) add(ev *api.AuditEvent) error {
	ev.Chain, ev.Seq, ev.PrevHash, ev.Hash = l.id, l.seq+1, l.prev, ""
	h, err := EventHash(ev)
	if err != nil {
		ev.Chain, ev.Seq, ev.PrevHash = "", 0, ""
		return fmt.Errorf("audit event cannot be written: %w", err)
	}
	ev.Hash = h
	l.seq, l.prev = ev.Seq, h
	if ev.Action == api.ActionAuditCheckpoint && ev.Actor == CheckpointActor {
		l.since = 0
	} else {
		l.since++
	}
	return nil
}

// checkpointEvent makes the checkpoint covering the link's last event; ok is false when there is
// nothing new to cover.
func (w *Writer) checkpointEvent(l *link) (api.AuditEvent, bool, error) {
	if l.since == 0 || l.seq == 0 {
		return api.AuditEvent{}, false, nil
	}
	jws, kid, err := w.opts.Signer.SignDetached(CheckpointType, CheckpointPayload(l.id, l.seq, l.prev))
	if err != nil {
		return api.AuditEvent{}, false, fmt.Errorf("signing an audit checkpoint: %w", err)
	}
	if kid == "" {
		return api.AuditEvent{}, false, errors.New("signing an audit checkpoint: the signer named no key")
	}
	return api.AuditEvent{
		ID:      uuid.Must(uuid.NewV7()).String(),
		Time:    w.opts.Now().UTC().Truncate(time.Microsecond),
		Actor:   CheckpointActor,
		Action:  api.ActionAuditCheckpoint,
		Outcome: api.OutcomeSuccess,
		Detail:  map[string]any{"chain": l.id, "seq": l.seq, "hash": l.prev, "kid": kid, "jws": jws},
	}, true, nil
}
