package jwtverify

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
)

var failureKinds = []string{KindMalformed, KindAlgorithm, KindSignature, KindExpired, KindNotYetValid,
	KindIssuedInFuture, KindLifetime, KindCondition}

// FuzzVerify feeds arbitrary strings to the verifier: it must never panic, always name a known
// failure kind, and never accept anything but the one genuinely signed seed token (strict base64
// gives every signed byte string exactly one encoding, so no mutation of it can verify).
func FuzzVerify(f *testing.F) {
	fx := newFixture(f, devissuer.Options{})
	valid, err := fx.issuer.Mint("github", nil, 0)
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	enc := base64.RawURLEncoding.EncodeToString
	seeds := []string{
		valid,
		"",
		".",
		"..",
		"a.b.c",
		parts[0] + "." + parts[1] + ".",
		parts[0] + "." + parts[1],
		enc([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
		enc([]byte(`{"alg":"HS256","kid":"x"}`)) + "." + parts[1] + "." + parts[2],
		enc([]byte(`{"alg":"RS256","kid":null}`)) + "." + parts[1] + "." + parts[2],
		enc([]byte(`{"alg":"RS256","crit":["exp"]}`)) + "." + parts[1] + "." + parts[2],
		enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(`{"exp":1e400}`)) + "." + parts[2],
		enc([]byte(`{"alg":"ES256","kid":"`+fx.issuer.KID()+`"}`)) + "." + parts[1] + "." + parts[2],
		enc([]byte(`null`)) + "." + enc([]byte(`null`)) + ".AA",
		enc([]byte(`{"alg":"RS256"}{}`)) + "." + parts[1] + "." + parts[2],
		strings.Repeat("A", MaxTokenBytes+1),
		valid + "=",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		res := fx.verifier.Verify(context.Background(), token, fx.policy)
		if res.OK {
			if token != valid {
				t.Fatalf("accepted a token that is not the signed seed: %q", token)
			}
			return
		}
		if !slices.Contains(failureKinds, res.FailedKind) {
			t.Fatalf("unknown failure kind %q", res.FailedKind)
		}
		if len(res.Checks) == 0 || res.FailedCheck == "" {
			t.Fatalf("a refusal must name the failing check: %+v", res)
		}
	})
}
