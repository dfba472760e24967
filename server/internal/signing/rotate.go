package signing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// Rotation is what a rotation did.
type Rotation struct {
	KID         string    // the key that signs next
	PreviousKID string    // the key that signed before ("" on an empty store)
	SignsFrom   time.Time // when KID signs
	Withdrawn   []string  // keys withdrawn (a compromise)
}

// Rotate starts the next signing key on the store, as `trustgate keys rotate-signing` does while
// servers run: a planned rotation publishes a key now that signs from now + PublishLead (or lets
// an already published next key sign as soon as it has been published that long); a compromise
// (compromised true) withdraws every published key at once and a new key signs immediately.
// Servers pick the change up at their next refresh. keks must open the key that signs now: a new
// key sealed under a KEK the servers do not have would be one they cannot sign with. actor names
// who asked, for the key.rotate audit event.
func Rotate(ctx context.Context, ks KeyStore, keks KEKs, compromised bool, actor string, now time.Time) (Rotation, error) {
	if err := keks.validate(); err != nil {
		return Rotation{}, err
	}
	var out Rotation
	_, err := ks.UpdateSigningKeys(ctx, func(cur []StoredKey) ([]StoredKey, []api.AuditEvent, error) {
		if err := checkOpens(cur, now, keks); err != nil {
			return nil, nil, err
		}
		s := evaluate(cur, now)
		if s.signer != nil {
			out.PreviousKID = s.signer.KID
		}
		var (
			keys   []StoredKey
			events []api.AuditEvent
			next   *StoredKey
			err    error
		)
		if compromised {
			keys, events, next, err = rotateCompromised(cur, now, keks, actor)
		} else {
			keys, events, next, err = rotatePlanned(cur, now, keks, actor)
		}
		if err != nil {
			return nil, nil, err
		}
		out.KID, out.SignsFrom = next.KID, activation(next)
		if w, ok := events[0].Detail["withdrawn"].([]string); ok {
			out.Withdrawn = w
		}
		return keys, events, nil
	})
	if err != nil {
		return Rotation{}, err
	}
	return out, nil
}

// RotateKEK re-seals every signing key that still has a private part under newKEK in one
// transaction (`trustgate kek rotate`), after opening each with keks; if any key does not open,
// nothing changes. It returns the kids it re-sealed. Servers that run with the old KEK keep the
// keys they have opened; restart them with TRUSTGATE_KEK = newKEK and TRUSTGATE_KEK_PREVIOUS =
// the old one, then drop the previous one.
func RotateKEK(ctx context.Context, ks KeyStore, keks KEKs, newKEK []byte, actor string) ([]string, error) {
	if err := keks.validate(); err != nil {
		return nil, err
	}
	if err := (KEKs{Current: newKEK}).validate(); err != nil {
		return nil, fmt.Errorf("the new key-encryption key: %w", err)
	}
	if bytes.Equal(newKEK, keks.Current) {
		return nil, errors.New("the new key-encryption key is the current one: generate a new one with `openssl rand -base64 32`")
	}
	var kids []string
	_, err := ks.UpdateSigningKeys(ctx, func(cur []StoredKey) ([]StoredKey, []api.AuditEvent, error) {
		keys, events, resealed, err := resealAll(cur, keks, newKEK, actor)
		kids = resealed
		return keys, events, err
	})
	if err != nil {
		return nil, err
	}
	return kids, nil
}
