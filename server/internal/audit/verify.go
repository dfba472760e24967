package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// Verifier checks the hash chains of an audit log read in insertion order (the database) or
// stream order (a streamed file): every event's hash, the numbering and links within each chain,
// and every checkpoint's signature. Feed it every event with Add, then call Finish. The first
// problem is returned as a *Break naming the event.
//
// A chain may start after seq 1: retention removes the oldest events, so the first events of a
// chain are allowed to be missing. Anything missing after the first event seen is a break.
type Verifier struct {
	// CheckSignature verifies a checkpoint's detached JWS over payload with the public keys the
	// verifier trusts and returns the kid that signed.
	CheckSignature func(jws string, payload []byte) (kid string, err error)

	chains    map[string]*ChainSummary
	gaps      []gap
	events    int64
	unchained int64
}

// ChainSummary is what the verifier saw of one chain.
type ChainSummary struct {
	Chain  string
	First  int64 // seq of the first event seen (1 unless retention removed the start)
	Last   int64 // seq of the last event seen
	Events int64
	// LastCheckpoint is the seq of the last checkpoint (0: none), CheckpointKID the key it was
	// signed with; events after it are not covered by a signature yet.
	LastCheckpoint int64
	CheckpointKID  string

	lastHash, lastID string
}

type gap struct {
	chain          string
	from, to       int64 // missing seqs
	beforeID, atID string
	at             int64 // index of the event after the gap
}

// Break is the first place where the log is not what its chains say.
type Break struct {
	Kind   string // "changed", "removed", "reordered", "inserted" or "checkpoint"
	Chain  string
	Seq    int64
	ID     string // the event named (for "removed": the event after the missing ones)
	Index  int64  // 1-based position of that event in the order read (a line number for a file)
	Reason string
}

func (b *Break) Error() string {
	if b.Chain == "" {
		return fmt.Sprintf("audit log: %s event %s (#%d): %s", b.Kind, b.ID, b.Index, b.Reason)
	}
	return fmt.Sprintf("audit chain %s: %s at seq %d (event %s, #%d): %s", b.Chain, b.Kind, b.Seq, b.ID, b.Index, b.Reason)
}

// Add checks the next event. raw is its JSON text as read (a stream line), or nil when ev comes
// from the database; the hash is then computed over ev's canonical form.
func (v *Verifier) Add(ev *api.AuditEvent, raw []byte) error {
	if v.chains == nil {
		v.chains = map[string]*ChainSummary{}
	}
	v.events++
	idx := v.events
	if ev.Chain == "" {
		if len(v.chains) > 0 {
			// Every event since migration 00008 is in a chain: one without, after chained ones,
			// was put there by something other than a Trustgate server.
			return &Break{Kind: "inserted", ID: ev.ID, Index: idx, Reason: "an event in no chain after chained events: not written by a Trustgate server"}
		}
		v.unchained++ // written before chains existed (migration 00008)
		return nil
	}
	var (
		want string
		err  error
	)
	if raw != nil {
		var c []byte
		if c, err = Canonicalize(raw, "hash"); err == nil {
			want = hashBytes(c)
		}
	} else {
		want, err = EventHash(ev)
	}
	if err != nil {
		return &Break{Kind: "changed", Chain: ev.Chain, Seq: ev.Seq, ID: ev.ID, Index: idx, Reason: "its content has no canonical form: " + err.Error()}
	}
	if want != ev.Hash {
		return &Break{Kind: "changed", Chain: ev.Chain, Seq: ev.Seq, ID: ev.ID, Index: idx, Reason: "its hash does not match its content"}
	}
	c := v.chains[ev.Chain]
	switch {
	case c == nil:
		if ev.Seq < 1 {
			return &Break{Kind: "changed", Chain: ev.Chain, Seq: ev.Seq, ID: ev.ID, Index: idx, Reason: "seq below 1"}
		}
		if ev.Seq == 1 && ev.PrevHash != "" {
			return &Break{Kind: "changed", Chain: ev.Chain, Seq: ev.Seq, ID: ev.ID, Index: idx, Reason: "the first event of a chain has a prev_hash"}
		}
		c = &ChainSummary{Chain: ev.Chain, First: ev.Seq}
		v.chains[ev.Chain] = c
	case ev.Seq == c.Last+1:
		if ev.PrevHash != c.lastHash {
			return &Break{Kind: "changed", Chain: ev.Chain, Seq: c.Last, ID: c.lastID, Index: idx - 1,
				Reason: fmt.Sprintf("the next event (seq %d, %s) links to another hash: this event or that link was changed", ev.Seq, ev.ID)}
		}
	case ev.Seq > c.Last+1:
		v.gaps = append(v.gaps, gap{chain: ev.Chain, from: c.Last + 1, to: ev.Seq - 1, beforeID: c.lastID, atID: ev.ID, at: idx})
	default: // ev.Seq <= c.Last
		if g := v.earliestGap(); g != nil && (g.chain != ev.Chain || ev.Seq < g.from || ev.Seq > g.to) && g.at < idx {
			return g.asBreak()
		}
		return &Break{Kind: "reordered", Chain: ev.Chain, Seq: ev.Seq, ID: ev.ID, Index: idx,
			Reason: fmt.Sprintf("it comes after seq %d of its chain", c.Last)}
	}
	if ev.Action == api.ActionAuditCheckpoint && ev.Actor == CheckpointActor {
		kid, reason := v.checkCheckpoint(ev)
		if reason != "" {
			return &Break{Kind: "checkpoint", Chain: ev.Chain, Seq: ev.Seq, ID: ev.ID, Index: idx, Reason: reason}
		}
		c.LastCheckpoint, c.CheckpointKID = ev.Seq, kid
	}
	c.Last, c.lastHash, c.lastID = ev.Seq, ev.Hash, ev.ID
	c.Events++
	return nil
}

// checkCheckpoint checks that a checkpoint covers the event before it and that its signature
// verifies; it returns the signing kid or why not.
func (v *Verifier) checkCheckpoint(ev *api.AuditEvent) (kid, reason string) {
	chain, _ := ev.Detail["chain"].(string)
	hash, _ := ev.Detail["hash"].(string)
	jws, _ := ev.Detail["jws"].(string)
	dkid, _ := ev.Detail["kid"].(string)
	seq, ok := detailInt(ev.Detail["seq"])
	if !ok || chain != ev.Chain || seq != ev.Seq-1 || hash != ev.PrevHash {
		return "", "it does not cover the event before it (detail chain, seq and hash must name it)"
	}
	if v.CheckSignature == nil {
		return "", "no public keys to check its signature with"
	}
	kid, err := v.CheckSignature(jws, CheckpointPayload(chain, seq, hash))
	if err != nil {
		return kid, "signature: " + err.Error()
	}
	if kid != dkid {
		return kid, fmt.Sprintf("signed by key %s but its detail names key %s", kid, dkid)
	}
	return kid, ""
}

func detailInt(v any) (int64, bool) {
	switch x := v.(type) {
	case float64:
		return int64(x), float64(int64(x)) == x
	case int64:
		return x, true
	case int:
		return int64(x), true
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	}
	return 0, false
}

func (v *Verifier) earliestGap() *gap {
	if len(v.gaps) == 0 {
		return nil
	}
	return &v.gaps[0]
}

func (g *gap) asBreak() *Break {
	missing := fmt.Sprintf("seq %d", g.from)
	if g.to > g.from {
		missing = fmt.Sprintf("seqs %d–%d", g.from, g.to)
	}
	return &Break{Kind: "removed", Chain: g.chain, Seq: g.to + 1, ID: g.atID, Index: g.at,
		Reason: fmt.Sprintf("%s missing between event %s and event %s", missing, g.beforeID, g.atID)}
}

// Finish reports an event missing from the middle of a chain, if any.
func (v *Verifier) Finish() error {
	if g := v.earliestGap(); g != nil {
		return g.asBreak()
	}
	return nil
}

// Chains summarises every chain seen, in name order (UUIDv7 names: oldest first).
func (v *Verifier) Chains() []ChainSummary {
	out := make([]ChainSummary, 0, len(v.chains))
	for _, c := range v.chains {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Chain < out[j].Chain })
	return out
}

// Report prints one line per chain and a total.
func (v *Verifier) Report(w io.Writer) {
	for _, c := range v.Chains() {
		start := ""
		if c.First > 1 {
			start = fmt.Sprintf(" (seq 1–%d removed by retention)", c.First-1)
		}
		signed := "no checkpoint"
		if c.LastCheckpoint > 0 {
			signed = fmt.Sprintf("checkpoint at seq %d signed by %s, %d events after it", c.LastCheckpoint, c.CheckpointKID, c.Last-c.LastCheckpoint)
		}
		fmt.Fprintf(w, "chain %s: seq %d–%d%s, %d events, %s\n", c.Chain, c.First, c.Last, start, c.Events, signed)
	}
	fmt.Fprintf(w, "%d events, %d chains, %d unchained (written before hash chains existed)\n", v.events, len(v.chains), v.unchained)
}
