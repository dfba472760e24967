package signing_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

// These tests run the key ring on a real store (SQLite, or PostgreSQL with
// TRUSTGATE_TEST_POSTGRES_URL) with a clock they move. keyStore is server/app's adapter.

type keyStore struct{ st *store.Store }

func (k keyStore) SigningKeys(ctx context.Context) ([]signing.StoredKey, error) {
	rows, err := k.st.SigningKeys(ctx)
	return toSigning(rows), err
}

func (k keyStore) SigningKeysVersion(ctx context.Context) (int64, error) {
	return k.st.SigningKeysVersion(ctx)
}

func (k keyStore) UpdateSigningKeys(ctx context.Context, plan func([]signing.StoredKey) ([]signing.StoredKey, []api.AuditEvent, error)) ([]signing.StoredKey, error) {
	rows, err := k.st.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, []api.AuditEvent, error) {
		next, evs, err := plan(toSigning(cur))
		out := make([]store.SigningKey, len(next))
		for i, n := range next {
			out[i] = store.SigningKey(n)
		}
		return out, evs, err
	})
	return toSigning(rows), err
}

func toSigning(rows []store.SigningKey) []signing.StoredKey {
	out := make([]signing.StoredKey, len(rows))
	for i, r := range rows {
		out[i] = signing.StoredKey(r)
	}
	return out
}

const issuer = "https://trustgate.example.com"

func newKEK(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, signing.KEKSize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func open(t testing.TB, st *store.Store, keks signing.KEKs, clock *ciissuer.Clock) *signing.KeyRing {
	t.Helper()
	ring, err := signing.Open(t.Context(), keyStore{st}, keks, signing.Options{Now: clock.Now})
	if err != nil {
		t.Fatalf("signing.Open: %v", err)
	}
	ring.Issuer, ring.Audience = issuer, issuer
	return ring
}

func refresh(t testing.TB, rings ...*signing.KeyRing) {
	t.Helper()
	for _, r := range rings {
		if err := r.Refresh(t.Context()); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
	}
}

func mint(t testing.TB, ring *signing.KeyRing, at time.Time) string {
	t.Helper()
	tok, err := ring.Mint(signing.AccessClaims{Subject: "workload:example", IssuedAt: at, NotBefore: at,
		Expiry: at.Add(signing.MaxTokenLifetime), ConnectionID: "c1", Connection: "c"})
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return tok
}

func jwksKIDs(t testing.TB, ring *signing.KeyRing) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(ring.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

func rows(t testing.TB, st *store.Store) []store.SigningKey {
	t.Helper()
	keys, err := st.SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func rotations(t testing.TB, st *store.Store) []api.AuditEvent {
	t.Helper()
	evs, _, err := st.ListAudit(t.Context(), connection.AuditFilter{Action: api.ActionKeyRotate, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestOpenCreatesTheFirstKeyOnceAndRecordsItsKEK(t *testing.T) {
	st := storetest.New(t)
	clock := ciissuer.NewClock(time.Now())
	keks := signing.KEKs{Current: newKEK(t)}
	first := open(t, st, keks, clock)
	again := open(t, st, keks, clock)
	stored := rows(t, st)
	if len(stored) != 1 || first.KID() != stored[0].KID || again.KID() != first.KID() {
		t.Fatalf("stored %d keys; rings sign with %q and %q", len(stored), first.KID(), again.KID())
	}
	if stored[0].KEKID != signing.KEKID(keks.Current) || !stored[0].ActivatesAt.Equal(stored[0].CreatedAt) {
		t.Errorf("first key: KEK id %q (want %q), activates %s, created %s: want signing at once",
			stored[0].KEKID, signing.KEKID(keks.Current), stored[0].ActivatesAt, stored[0].CreatedAt)
	}
	if evs := rotations(t, st); len(evs) != 0 {
		t.Errorf("key.rotate events %+v for the first key, which is no rotation", evs)
	}
	if _, err := signing.Open(t.Context(), keyStore{st}, keks, signing.Options{Rotation: 30 * time.Minute}); err == nil {
		t.Error("a rotation period shorter than the publish lead was accepted")
	}
}

// TestReplicasRacingToCreateTheNextKeyCreateOne: eight replicas (each its own store handle on one
// database) reach the moment the next key is due together; exactly one key is created, with one
// audit event, and all of them publish it.
func TestReplicasRacingToCreateTheNextKeyCreateOne(t *testing.T) {
	dsn := testdb.DSN(t)
	clock := ciissuer.NewClock(time.Now())
	keks := signing.KEKs{Current: newKEK(t)}
	var rings []*signing.KeyRing
	var stores []*store.Store
	for range 8 {
		st, err := store.Open(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		stores = append(stores, st)
		rings = append(rings, open(t, st, keks, clock))
	}
	clock.Advance(signing.DefaultRotation - signing.PublishLead)
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, len(rings))
	for i, r := range rings {
		wg.Go(func() {
			<-start
			errs[i] = r.Refresh(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	refresh(t, rings...)
	if got := rows(t, stores[0]); len(got) != 2 {
		t.Fatalf("%d keys stored after the race, want 2", len(got))
	}
	if evs := rotations(t, stores[0]); len(evs) != 1 || evs[0].Actor != signing.SystemActor || evs[0].Detail["mode"] != signing.ModeScheduled {
		t.Errorf("key.rotate events %+v, want one scheduled rotation", evs)
	}
	want := string(rings[0].JWKS())
	for i, r := range rings {
		if string(r.JWKS()) != want || len(jwksKIDs(t, r)) != 2 {
			t.Errorf("replica %d publishes %v, replica 0 %s", i, jwksKIDs(t, r), want)
		}
	}
}

func TestAServerGivenTheWrongKEKRefusesToStartAndNamesTheOneItNeeds(t *testing.T) {
	st := storetest.New(t)
	clock := ciissuer.NewClock(time.Now())
	right := newKEK(t)
	open(t, st, signing.KEKs{Current: right}, clock)
	wrong := newKEK(t)
	_, err := signing.Open(t.Context(), keyStore{st}, signing.KEKs{Current: wrong}, signing.Options{Now: clock.Now})
	var wk *signing.WrongKEKError
	if !errors.As(err, &wk) || wk.Need != signing.KEKID(right) || wk.Have != signing.KEKID(wrong) {
		t.Fatalf("Open with another KEK: %v; want a WrongKEKError naming %s", err, signing.KEKID(right))
	}
	for _, want := range []string{signing.KEKID(right), "TRUSTGATE_KEK", "trustgate kek id"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	// Not even a due rotation makes it mint with a key of its own.
	clock.Advance(signing.DefaultRotation)
	if _, err := signing.Open(t.Context(), keyStore{st}, signing.KEKs{Current: wrong}, signing.Options{Now: clock.Now}); err == nil {
		t.Fatal("Open with another KEK succeeded once the next key was due")
	}
	if n := len(rows(t, st)); n != 1 {
		t.Errorf("%d keys stored, want still 1", n)
	}
	// Nor does a command: a key sealed under a KEK no server has would be one no server can use.
	if _, err := signing.Rotate(t.Context(), keyStore{st}, signing.KEKs{Current: wrong}, false, "ops", clock.Now()); !errors.As(err, &wk) {
		t.Errorf("rotate-signing with another KEK: %v, want a WrongKEKError", err)
	}
}

// TestKEKRotationThenOnlyTheNewKEKOpens: kek rotate re-seals every key in one go; afterwards the
// new KEK alone opens them, the old one alone is refused naming the new one, and a server with the
// old one as previous (the rolling restart) opens keys sealed under either and re-seals the
// stragglers so the previous KEK can go.
func TestKEKRotationThenOnlyTheNewKEKOpens(t *testing.T) {
	st := storetest.New(t)
	clock := ciissuer.NewClock(time.Now())
	oldKEK, newK := newKEK(t), newKEK(t)
	ring := open(t, st, signing.KEKs{Current: oldKEK}, clock)
	if _, err := signing.Rotate(t.Context(), keyStore{st}, signing.KEKs{Current: oldKEK}, false, "ops", clock.Now()); err != nil {
		t.Fatal(err) // a pending next key: two keys with private parts
	}
	if _, err := signing.RotateKEK(t.Context(), keyStore{st}, signing.KEKs{Current: newKEK(t)}, newK, "ops"); err == nil {
		t.Fatal("kek rotate with a KEK that opens nothing succeeded")
	}
	for _, r := range rows(t, st) {
		if r.KEKID != signing.KEKID(oldKEK) {
			t.Fatalf("a failed kek rotate changed key %s", r.KID)
		}
	}
	kids, err := signing.RotateKEK(t.Context(), keyStore{st}, signing.KEKs{Current: oldKEK}, newK, "ops")
	if err != nil || len(kids) != 2 {
		t.Fatalf("kek rotate: %v %v, want 2 keys re-sealed", kids, err)
	}
	for _, r := range rows(t, st) {
		if r.KEKID != signing.KEKID(newK) {
			t.Errorf("key %s is sealed under %s after kek rotate", r.KID, r.KEKID)
		}
	}
	if again := open(t, st, signing.KEKs{Current: newK}, clock); again.KID() != ring.KID() {
		t.Errorf("with the new KEK the ring signs with %s, want %s", again.KID(), ring.KID())
	}
	var wk *signing.WrongKEKError
	if _, err := signing.Open(t.Context(), keyStore{st}, signing.KEKs{Current: oldKEK}, signing.Options{Now: clock.Now}); !errors.As(err, &wk) || wk.Need != signing.KEKID(newK) {
		t.Errorf("Open with only the old KEK: %v, want a refusal naming %s", err, signing.KEKID(newK))
	}

	// A server still on the old KEK creates a key during the rolling restart: a server with
	// the new KEK and the old as previous opens it and re-seals it.
	clock.Advance(2 * signing.PublishLead)
	if _, err := signing.Rotate(t.Context(), keyStore{st}, signing.KEKs{Current: newK}, false, "ops", clock.Now()); err != nil {
		t.Fatal(err)
	}
	straggler := rows(t, st)[len(rows(t, st))-1]
	priv, err := signing.Unseal(newK, straggler.KID, straggler.SealedPrivate)
	if err != nil {
		t.Fatal(err)
	}
	resealed, _ := signing.Seal(oldKEK, straggler.KID, priv)
	if _, err := st.UpdateSigningKeys(t.Context(), func(cur []store.SigningKey) ([]store.SigningKey, []api.AuditEvent, error) {
		cur[len(cur)-1].SealedPrivate, cur[len(cur)-1].KEKID = resealed, signing.KEKID(oldKEK)
		return cur, nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	open(t, st, signing.KEKs{Current: newK, Previous: oldKEK}, clock)
	for _, r := range rows(t, st) {
		if len(r.SealedPrivate) > 0 && r.KEKID != signing.KEKID(newK) {
			t.Errorf("key %s still sealed under %s after a server with the previous KEK started", r.KID, r.KEKID)
		}
	}
	open(t, st, signing.KEKs{Current: newK}, clock) // the previous KEK is no longer needed
}

// TestPlannedRotationPublishesNowAndSignsAnHourLater, then a second one lets the published key
// sign as soon as it has been published an hour.
func TestPlannedRotationPublishesNowAndSignsAnHourLater(t *testing.T) {
	st := storetest.New(t)
	clock := ciissuer.NewClock(time.Now().Truncate(time.Second))
	keks := signing.KEKs{Current: newKEK(t)}
	a, b := open(t, st, keks, clock), open(t, st, keks, clock)
	k1 := a.KID()
	rot, err := signing.Rotate(t.Context(), keyStore{st}, keks, false, "ops", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rot.PreviousKID != k1 || !rot.SignsFrom.Equal(clock.Now().Add(signing.PublishLead)) {
		t.Fatalf("rotation %+v, want from %s signing an hour later", rot, k1)
	}
	refresh(t, a, b)
	if !slices.Equal(jwksKIDs(t, a), []string{k1, rot.KID}) || string(a.JWKS()) != string(b.JWKS()) || a.KID() != k1 {
		t.Fatalf("after a planned rotation: %v signing %s; want both published, %s still signing", jwksKIDs(t, a), a.KID(), k1)
	}
	clock.Advance(signing.PublishLead - time.Second)
	if a.KID() != k1 {
		t.Fatalf("the new key signs %s before its hour", time.Second)
	}
	clock.Advance(time.Second)
	if a.KID() != rot.KID {
		t.Fatalf("the new key does not sign at its activation (before any refresh)")
	}
	evs := rotations(t, st)
	if evs[0].Actor != "ops" || evs[0].Detail["mode"] != signing.ModePlanned || evs[0].Detail["kid"] != rot.KID || evs[0].Detail["previous_kid"] != k1 {
		t.Errorf("audit %+v, want ops's planned rotation to %s", evs[0], rot.KID)
	}

	// A second planned rotation while a next key is published creates no other key.
	again, err := signing.Rotate(t.Context(), keyStore{st}, keks, false, "ops", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Minute)
	third, err := signing.Rotate(t.Context(), keyStore{st}, keks, false, "ops", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if third.KID != again.KID || !third.SignsFrom.Equal(again.SignsFrom) || len(rows(t, st)) != 3 {
		t.Errorf("a planned rotation while %s is published made %+v (%d keys stored), want the same key and time", again.KID, third, len(rows(t, st)))
	}
}

// TestCompromisedRotationWithdrawsEveryPublishedKeyAtOnce: the current key, the retired one still
// published and the published next one are withdrawn; their tokens stop verifying on every
// replica at its next refresh; a new key signs at once; the withdrawn private parts are erased.
func TestCompromisedRotationWithdrawsEveryPublishedKeyAtOnce(t *testing.T) {
	st := storetest.New(t)
	clock := ciissuer.NewClock(time.Now().Truncate(time.Second))
	keks := signing.KEKs{Current: newKEK(t)}
	a, b := open(t, st, keks, clock), open(t, st, keks, clock)
	retiredTok := mint(t, a, clock.Now())
	if _, err := signing.Rotate(t.Context(), keyStore{st}, keks, false, "ops", clock.Now()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(signing.PublishLead)
	currentTok := mint(t, a, clock.Now())
	if _, err := signing.Rotate(t.Context(), keyStore{st}, keks, false, "ops", clock.Now()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Minute)
	refresh(t, a, b)
	if n := len(jwksKIDs(t, a)); n != 3 {
		t.Fatalf("before the compromise %d keys are published, want 3 (retired, current, next)", n)
	}
	for _, tok := range []string{retiredTok, currentTok} {
		if _, err := b.Verify(tok, clock.Now()); err != nil {
			t.Fatalf("a token before the compromise: %v", err)
		}
	}

	published := jwksKIDs(t, a)
	rot, err := signing.Rotate(t.Context(), keyStore{st}, keks, true, "security", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rot.Withdrawn, published) || !rot.SignsFrom.Equal(clock.Now()) {
		t.Fatalf("compromise %+v, want %v withdrawn and a key signing now", rot, published)
	}
	// Until its next refresh a replica still knows the old keys; after it, nothing they signed verifies.
	refresh(t, a, b)
	for _, r := range []*signing.KeyRing{a, b} {
		for _, tok := range []string{retiredTok, currentTok} {
			if _, err := r.Verify(tok, clock.Now()); !errors.Is(err, signing.ErrWithdrawn) {
				t.Errorf("a token of a withdrawn key: %v, want ErrWithdrawn", err)
			}
		}
		if !slices.Equal(jwksKIDs(t, r), []string{rot.KID}) || r.KID() != rot.KID {
			t.Errorf("after the compromise the JWKS is %v and %s signs, want only %s", jwksKIDs(t, r), r.KID(), rot.KID)
		}
	}
	if _, err := b.Verify(mint(t, a, clock.Now()), clock.Now()); err != nil {
		t.Errorf("a new token from one replica on the other: %v", err)
	}
	for _, r := range rows(t, st) {
		if r.KID != rot.KID && len(r.SealedPrivate) > 0 {
			t.Errorf("key %s keeps its private part after the compromise", r.KID)
		}
	}
	evs := rotations(t, st)
	if evs[0].Actor != "security" || evs[0].Detail["mode"] != signing.ModeCompromised || evs[0].Detail["kid"] != rot.KID {
		t.Errorf("audit %+v, want security's compromise rotation", evs[0])
	}
}
