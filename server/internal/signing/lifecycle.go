package signing

import (
	"slices"
	"time"
)

// The key lifecycle of CONTRACT.md §2. Every rule about when a key is published, signs, retires
// or loses its private part lives in this file, as functions of the stored keys and an instant;
// the key ring (ring.go) and the maintenance plans (plan.go) only apply them.
//
//   - A key is published (in the JWKS, and accepted by Verify) from its creation.
//   - It signs from its activation time (ActivatesAt) until the next key's activation time: its
//     "last signing time". The first key of a deployment, and the key that replaces a withdrawn
//     one, sign at once; every other key is created at least PublishLead before it signs, so that
//     verifiers that cache the JWKS for an hour never meet an unknown kid.
//   - A retired key stays published until every token it signed has expired: its last signing
//     time + MaxTokenLifetime + Leeway. Then it disappears from the JWKS.
//   - A key that can never sign again (retired for Leeway, or withdrawn) has its private part
//     erased from the database; its public part stays, for the record.
//   - A withdrawn key (rotate-signing --compromised) is never published again: every token it
//     signed stops verifying.
//   - The next key is created when the current one has signed for Rotation − PublishLead, and
//     signs once the current one has signed for Rotation (or PublishLead after its creation,
//     whichever is later: a deployment that was down at the planned moment catches up safely).
const (
	// PublishLead is how long a key is published before it signs (CONTRACT.md §2: at least 1 h).
	PublishLead = time.Hour
	// MaxTokenLifetime is the longest access-token TTL a connection may have (CONTRACT.md §1).
	MaxTokenLifetime = 24 * time.Hour
	// Leeway covers clocks of replicas that disagree a little: a key retires this much after its
	// last signing time, and a retired key stays published this much longer than its last token.
	Leeway = 60 * time.Second
	// DefaultRotation is how long a key signs before the next one takes over.
	DefaultRotation = 168 * time.Hour
	// MinRotation is the shortest rotation period: a key signs for at least as long as its
	// successor must be published before it.
	MinRotation = PublishLead
)

// schedule is the lifecycle of the stored keys at one instant.
type schedule struct {
	// signer is the key that signs at the instant; nil before the first key's activation (a
	// replica whose clock is behind the one that created it).
	signer *StoredKey
	// next is the earliest key that will sign after the instant, if one is already published.
	next *StoredKey
	// published are the keys in the JWKS, in activation order.
	published []*StoredKey
	// erasable are the keys whose sealed private part can be erased.
	erasable []*StoredKey
	// lastSigned is the last signing time of every key a later one has succeeded, by kid.
	lastSigned map[string]time.Time
}

// byActivation returns the keys in the order they sign (activation time, then kid).
func byActivation(keys []StoredKey) []*StoredKey {
	out := make([]*StoredKey, len(keys))
	for i := range keys {
		out[i] = &keys[i]
	}
	slices.SortStableFunc(out, func(a, b *StoredKey) int {
		if c := activation(a).Compare(activation(b)); c != 0 {
			return c
		}
		switch {
		case a.KID < b.KID:
			return -1
		case a.KID > b.KID:
			return 1
		}
		return 0
	})
	return out
}

// activation is when k signs from. Keys stored before the lifecycle existed have none: they
// signed from their creation.
func activation(k *StoredKey) time.Time {
	if k.ActivatesAt.IsZero() {
		return k.CreatedAt
	}
	return k.ActivatesAt
}

// evaluate applies the lifecycle rules to keys at now.
func evaluate(keys []StoredKey, now time.Time) schedule {
	s := schedule{lastSigned: map[string]time.Time{}}
	var live []*StoredKey // not withdrawn, in activation order
	for _, k := range byActivation(keys) {
		if k.WithdrawnAt != nil {
			if len(k.SealedPrivate) > 0 {
				s.erasable = append(s.erasable, k)
			}
			continue
		}
		live = append(live, k)
	}
	for i, k := range live {
		if !activation(k).After(now) {
			s.signer = k
		} else if s.next == nil {
			s.next = k
		}
		if i+1 < len(live) {
			s.lastSigned[k.KID] = activation(live[i+1])
		}
	}
	for _, k := range live {
		last, retired := s.lastSigned[k.KID]
		if retired && !now.Before(last) {
			if now.Before(last.Add(MaxTokenLifetime + Leeway)) {
				s.published = append(s.published, k)
			}
			if !now.Before(last.Add(Leeway)) && len(k.SealedPrivate) > 0 {
				s.erasable = append(s.erasable, k)
			}
			continue
		}
		s.published = append(s.published, k)
	}
	return s
}

// nextRotation is when the next key signs: the published next key's activation, else when the
// current key will have signed for rotation. Zero without a signer or a rotation period.
func (s schedule) nextRotation(rotation time.Duration) time.Time {
	switch {
	case s.next != nil:
		return activation(s.next)
	case s.signer == nil || rotation <= 0:
		return time.Time{}
	}
	return activation(s.signer).Add(rotation)
}

// nextKeyDue reports whether a key must be created at now, and when it would sign: at once when
// nothing signs or will (an empty store); when the current key is due to be succeeded within
// PublishLead and no successor is published yet, at the later of the planned moment and
// now + PublishLead.
func (s schedule) nextKeyDue(now time.Time, rotation time.Duration) (bool, time.Time) {
	switch {
	case s.signer == nil && s.next == nil:
		return true, now
	case s.next != nil || rotation <= 0:
		return false, time.Time{}
	}
	planned := activation(s.signer).Add(rotation)
	if now.Before(planned.Add(-PublishLead)) {
		return false, time.Time{}
	}
	return true, later(planned, now.Add(PublishLead))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
