package signing

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// FuzzMintClaimsJSONIsWhatEncodingJSONWrites keeps appendWireClaims byte-identical to
// json.Marshal(wireClaims) for any strings and times (TestMintClaimsJSONIsWhatEncodingJSONWrites
// holds the hand-picked cases; this explores the rest).
func FuzzMintClaimsJSONIsWhatEncodingJSONWrites(f *testing.F) {
	f.Add("https://trustgate.example.com", "repo:acme/app:ref:refs/heads/main", "github-deploy", int64(1764331200), int64(1800))
	f.Add(`quo"te\`, "<a&b>", "\u2028\x00\x7f", int64(-1), int64(1<<62))
	f.Add("héllo😀", "bad\xffutf8", "", int64(0), int64(0))
	f.Fuzz(func(t *testing.T, iss, sub, conn string, iat, ttl int64) {
		w := wireClaims{Iss: iss, Sub: sub, Aud: api.Audience{iss + "/aud"}, Iat: iat, Nbf: iat - 60, Exp: iat + ttl,
			Jti: sub + conn, Connection: conn, ConnectionID: conn + "-id", SourceIss: sub}
		want, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := appendWireClaims(nil, w); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("claims JSON:\n got %s\nwant %s", got, want)
		}
	})
}

// BenchmarkMintSigningInput is what Mint's hand-written encoding is for: the signing input
// (header "." base64url(claims JSON)) of a typical access token, built the way Mint builds it
// (appendWireClaims into a stack buffer, base64 through writeBase64 into one strings.Builder) and
// the way it was built before (json.Marshal of wireClaims, EncodeToString, concatenation). The
// ES256 signature that follows costs far more either way (BenchmarkMint); this part is what the
// fast path changes.
func BenchmarkMintSigningInput(b *testing.B) {
	ring := newRing(b)
	c := sampleClaims(time.Unix(1764331200, 0))
	w := wireClaims{
		Iss: ring.Issuer, Sub: c.Subject, Aud: api.Audience{ring.Audience},
		Iat: c.IssuedAt.Unix(), Nbf: c.NotBefore.Unix(), Exp: c.Expiry.Unix(),
		Jti: "q1w2e3r4t5y6u7i8o9p0aa", Connection: c.Connection, ConnectionID: c.ConnectionID, SourceIss: c.SourceIssuer,
	}
	header := ring.currentKey().header
	want := header + "." + b64.EncodeToString(mustJSON(json.Marshal(w)))
	b.Run("appendWireClaims", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var scratch [512]byte
			payload, _ := appendWireClaims(scratch[:0], w)
			var sb strings.Builder
			sb.Grow(len(header) + 1 + b64.EncodedLen(len(payload)) + 1 + b64.EncodedLen(es256SigLen))
			sb.WriteString(header)
			sb.WriteByte('.')
			writeBase64(&sb, payload)
			if sb.Len() != len(want) {
				b.Fatal("wrong signing input")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			payload, err := json.Marshal(w)
			if err != nil {
				b.Fatal(err)
			}
			if s := header + "." + b64.EncodeToString(payload); len(s) != len(want) {
				b.Fatal("wrong signing input")
			}
		}
	})
}

func mustJSON(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
