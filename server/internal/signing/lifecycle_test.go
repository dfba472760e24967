package signing

import (
	"slices"
	"testing"
	"time"
)

// key is a stored key for the lifecycle's pure rules: only its times matter.
func key(kid string, created, activates time.Time) StoredKey {
	return StoredKey{KID: kid, Algorithm: Algorithm, SealedPrivate: []byte{1}, CreatedAt: created, ActivatesAt: activates}
}

func kids(keys []*StoredKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.KID)
	}
	return out
}

func kidOf(k *StoredKey) string {
	if k == nil {
		return ""
	}
	return k.KID
}

// TestLifecycleAtEveryMoment walks two keys through a rotation: k2 published an hour before it
// signs, k1 published until its last token (signed at k2's activation) has expired, private parts
// erased a minute after their last signing time.
func TestLifecycleAtEveryMoment(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	k2at := t0.Add(DefaultRotation)
	keys := []StoredKey{key("k1", t0, t0), key("k2", k2at.Add(-PublishLead), k2at)}
	cases := []struct {
		name           string
		at             time.Time
		signer, next   string
		published      []string
		erasable       []string
		nextKeyDueNow  bool
		nextRotationAt time.Time
	}{
		{"k1 signs, k2 published an hour early", k2at.Add(-PublishLead), "k1", "k2", []string{"k1", "k2"}, nil, false, k2at},
		{"a nanosecond before k2 signs", k2at.Add(-1), "k1", "k2", []string{"k1", "k2"}, nil, false, k2at},
		{"k2 signs at its activation", k2at, "k2", "", []string{"k1", "k2"}, nil, false, k2at.Add(DefaultRotation)},
		{"k1's private part kept for the leeway", k2at.Add(Leeway - 1), "k2", "", []string{"k1", "k2"}, nil, false, k2at.Add(DefaultRotation)},
		{"k1's private part erasable after it", k2at.Add(Leeway), "k2", "", []string{"k1", "k2"}, []string{"k1"}, false, k2at.Add(DefaultRotation)},
		{"k1 published until its last token expired", k2at.Add(MaxTokenLifetime + Leeway - 1), "k2", "", []string{"k1", "k2"}, []string{"k1"}, false, k2at.Add(DefaultRotation)},
		{"then k1 disappears", k2at.Add(MaxTokenLifetime + Leeway), "k2", "", []string{"k2"}, []string{"k1"}, false, k2at.Add(DefaultRotation)},
		{"k3 not due a second before its publish lead", k2at.Add(DefaultRotation - PublishLead - time.Second), "k2", "", []string{"k2"}, []string{"k1"}, false, k2at.Add(DefaultRotation)},
		{"k3 due at its publish lead", k2at.Add(DefaultRotation - PublishLead), "k2", "", []string{"k2"}, []string{"k1"}, true, k2at.Add(DefaultRotation)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := evaluate(keys, tc.at)
			if kidOf(s.signer) != tc.signer || kidOf(s.next) != tc.next {
				t.Errorf("signer %q next %q, want %q %q", kidOf(s.signer), kidOf(s.next), tc.signer, tc.next)
			}
			if got := kids(s.published); !slices.Equal(got, tc.published) {
				t.Errorf("published %v, want %v", got, tc.published)
			}
			if got := kids(s.erasable); !slices.Equal(got, tc.erasable) {
				t.Errorf("erasable %v, want %v", got, tc.erasable)
			}
			due, from := s.nextKeyDue(tc.at, DefaultRotation)
			if due != tc.nextKeyDueNow {
				t.Errorf("next key due = %v, want %v", due, tc.nextKeyDueNow)
			}
			if due && from.Sub(tc.at) < PublishLead {
				t.Errorf("a next key created at %s would sign at %s, less than %s later", tc.at, from, PublishLead)
			}
			if got := s.nextRotation(DefaultRotation); !got.Equal(tc.nextRotationAt) {
				t.Errorf("next rotation %s, want %s", got, tc.nextRotationAt)
			}
		})
	}
}

// A deployment that was down when its next key was due creates it at start, and it still signs
// only an hour later.
func TestLateNextKeyStillPublishedAnHourBeforeItSigns(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	s := evaluate([]StoredKey{key("k1", t0, t0)}, t0.Add(30*24*time.Hour))
	due, from := s.nextKeyDue(t0.Add(30*24*time.Hour), DefaultRotation)
	if !due || !from.Equal(t0.Add(30*24*time.Hour+PublishLead)) {
		t.Fatalf("due %v from %s, want due from an hour after now", due, from)
	}
}

// An empty store, and a clock behind the one that created the first key.
func TestFirstKeySignsAtOnceAndASkewedClockDoesNotAddOne(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if due, from := evaluate(nil, t0).nextKeyDue(t0, DefaultRotation); !due || !from.Equal(t0) {
		t.Errorf("empty store: due %v from %s, want a key signing at once", due, from)
	}
	s := evaluate([]StoredKey{key("k1", t0, t0)}, t0.Add(-time.Second))
	if s.signer != nil || kidOf(s.next) != "k1" {
		t.Fatalf("a second before k1: signer %q next %q", kidOf(s.signer), kidOf(s.next))
	}
	if due, _ := s.nextKeyDue(t0.Add(-time.Second), DefaultRotation); due {
		t.Error("a replica whose clock is a second behind would create a second first key")
	}
}

// Withdrawn keys are never published, whatever their times, and their private parts are erasable.
func TestWithdrawnKeysAreNeverPublished(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	k1 := key("k1", t0, t0)
	w := t0.Add(time.Hour)
	k1.WithdrawnAt = &w
	k2 := key("k2", w, w)
	s := evaluate([]StoredKey{k1, k2}, w)
	if got := kids(s.published); !slices.Equal(got, []string{"k2"}) || kidOf(s.signer) != "k2" {
		t.Errorf("published %v signer %q, want only k2", got, kidOf(s.signer))
	}
	if got := kids(s.erasable); !slices.Equal(got, []string{"k1"}) {
		t.Errorf("erasable %v, want k1", got)
	}
}
