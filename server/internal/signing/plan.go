package signing

import (
	"fmt"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// The plans below run inside KeyStore.UpdateSigningKeys, on the keys as committed, while no other
// plan of any replica or command runs: each decides from what the others have already done, which
// is why replicas racing to create the next key create exactly one. A plan returns the keys to
// store and the audit events that go with them; it changes nothing when nothing is due.

// Modes of a rotation, in the detail of its key.rotate audit event.
const (
	ModeScheduled   = "scheduled"   // the server created the next key on the rotation schedule
	ModePlanned     = "planned"     // trustgate keys rotate-signing
	ModeCompromised = "compromised" // trustgate keys rotate-signing --compromised
	ModeKEK         = "kek"         // trustgate kek rotate re-sealed the keys
)

// SystemActor is the audit actor of what the server does on its own (the rotation schedule).
const SystemActor = "trustgate"

// maintain is what a server does on its own at now: create the first key (not audited: it is no
// rotation) or the next one when due, erase the private parts of keys that can never sign again, and re-seal under the current
// KEK the keys it could open only with the previous one (or whose KEK was not recorded), so that
// the previous KEK can be dropped after a rolling restart.
func maintain(keys []StoredKey, now time.Time, rotation time.Duration, keks KEKs) ([]StoredKey, []api.AuditEvent, error) {
	s := evaluate(keys, now)
	var events []api.AuditEvent
	if due, from := s.nextKeyDue(now, rotation); due {
		k, err := NewStoredKey(keks.Current, now)
		if err != nil {
			return nil, nil, err
		}
		k.ActivatesAt = from
		keys = append(keys, k)
		if s.signer != nil || s.next != nil { // a deployment's first key is no rotation
			events = append(events, rotateEvent(SystemActor, ModeScheduled, s.signer, k, nil))
		}
	}
	keys, err := resealStragglers(erase(keys, s), keks)
	if err != nil {
		return nil, nil, err
	}
	return keys, events, nil
}

// rotatePlanned starts the next key now (trustgate keys rotate-signing): a key already published
// signs as soon as it has been published for PublishLead; otherwise a new key is published now and
// signs from now + PublishLead.
func rotatePlanned(keys []StoredKey, now time.Time, keks KEKs, actor string) ([]StoredKey, []api.AuditEvent, *StoredKey, error) {
	s := evaluate(keys, now)
	if s.next != nil {
		from := later(s.next.CreatedAt.Add(PublishLead), now)
		if from.Before(activation(s.next)) {
			s.next.ActivatesAt = from
		}
		next := *s.next
		return keys, []api.AuditEvent{rotateEvent(actor, ModePlanned, s.signer, next, nil)}, &next, nil
	}
	k, err := NewStoredKey(keks.Current, now)
	if err != nil {
		return nil, nil, nil, err
	}
	if s.signer != nil {
		k.ActivatesAt = now.Add(PublishLead)
	}
	keys = append(keys, k)
	return keys, []api.AuditEvent{rotateEvent(actor, ModePlanned, s.signer, k, nil)}, &k, nil
}

// rotateCompromised withdraws every key that is published or could still sign (trustgate keys
// rotate-signing --compromised) and creates a key that signs at once. Every published key is
// withdrawn, not only the current one: the servers hold all of them, sealed in the same database
// and open in the same memory, so whatever exposed the current key exposed them too, and a
// retired key still published would let its holder forge tokens that verify for up to a day.
// The private parts of the withdrawn keys are erased.
func rotateCompromised(keys []StoredKey, now time.Time, keks KEKs, actor string) ([]StoredKey, []api.AuditEvent, *StoredKey, error) {
	s := evaluate(keys, now)
	withdraw := map[string]bool{}
	for _, k := range s.published {
		withdraw[k.KID] = true
	}
	var withdrawn []string
	for i := range keys {
		if withdraw[keys[i].KID] {
			at := now
			keys[i].WithdrawnAt = &at
			keys[i].SealedPrivate = nil
			withdrawn = append(withdrawn, keys[i].KID)
		}
	}
	keys = erase(keys, s)
	k, err := NewStoredKey(keks.Current, now)
	if err != nil {
		return nil, nil, nil, err
	}
	keys = append(keys, k)
	return keys, []api.AuditEvent{rotateEvent(actor, ModeCompromised, s.signer, k, withdrawn)}, &k, nil
}

// resealAll re-seals under newKEK every key that still has a private part (trustgate kek
// rotate). A key that cannot be opened with keks fails the whole plan: nothing is re-sealed.
func resealAll(keys []StoredKey, keks KEKs, newKEK []byte, actor string) ([]StoredKey, []api.AuditEvent, []string, error) {
	newID := KEKID(newKEK)
	var kids []string
	for i := range keys {
		k := &keys[i]
		if len(k.SealedPrivate) == 0 {
			continue
		}
		priv, err := keks.open(*k)
		if err != nil {
			return nil, nil, nil, err
		}
		if k.SealedPrivate, err = Seal(newKEK, k.KID, priv); err != nil {
			return nil, nil, nil, err
		}
		k.KEKID = newID
		kids = append(kids, k.KID)
	}
	ev := api.AuditEvent{Actor: actor, Action: api.ActionKeyRotate, Outcome: api.OutcomeSuccess,
		Reason: "key-encryption key rotated: " + newID, Detail: map[string]any{"mode": ModeKEK, "kek_id": newID, "resealed": kids}}
	return keys, []api.AuditEvent{ev}, kids, nil
}

// erase empties the private part of the keys s says can never sign again.
func erase(keys []StoredKey, s schedule) []StoredKey {
	gone := map[string]bool{}
	for _, k := range s.erasable {
		gone[k.KID] = true
	}
	for i := range keys {
		if gone[keys[i].KID] {
			keys[i].SealedPrivate = nil
		}
	}
	return keys
}

// resealStragglers re-seals under the current KEK the keys sealed under another one that keks can
// open (the previous KEK during a rolling restart, or a key stored before KEK ids were recorded).
// Keys it cannot open are left to a server that can.
func resealStragglers(keys []StoredKey, keks KEKs) ([]StoredKey, error) {
	id := keks.id()
	for i := range keys {
		k := &keys[i]
		if len(k.SealedPrivate) == 0 || k.KEKID == id {
			continue
		}
		priv, err := keks.open(*k)
		if err != nil {
			continue
		}
		if k.SealedPrivate, err = Seal(keks.Current, k.KID, priv); err != nil {
			return nil, err
		}
		k.KEKID = id
	}
	return keys, nil
}

// rotateEvent is the key.rotate audit event of a rotation from prev (nil: none) to k.
func rotateEvent(actor, mode string, prev *StoredKey, k StoredKey, withdrawn []string) api.AuditEvent {
	detail := map[string]any{"mode": mode, "kid": k.KID, "signs_from": activation(&k).UTC().Format(time.RFC3339)}
	reason := fmt.Sprintf("%s rotation: key %s signs from %s", mode, k.KID, activation(&k).UTC().Format(time.RFC3339))
	if prev != nil {
		detail["previous_kid"] = prev.KID
	}
	if withdrawn != nil {
		detail["withdrawn"] = withdrawn
		reason = fmt.Sprintf("compromised: %d key(s) withdrawn, key %s signs at once", len(withdrawn), k.KID)
	}
	return api.AuditEvent{Actor: actor, Action: api.ActionKeyRotate, Outcome: api.OutcomeSuccess, Reason: reason, Detail: detail}
}
