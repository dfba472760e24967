package signing

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// decodeClaims decodes a claims object the way the verifier does (numbers as json.Number).
func decodeClaims(t testing.TB, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decoding %s: %v", s, err)
	}
	return m
}

// The hand-written encoder writes a list aud and the claims object exactly as encoding/json does.
func TestWireClaimsWithAudiencesAndClaimsAreWhatEncodingJSONWrites(t *testing.T) {
	auds := []api.Audience{nil, {}, {"https://one.example"}, {"https://a.example", "b<&>", "é\u2028"}}
	claims := []map[string]any{
		nil,
		{},
		decodeClaims(t, `{"repository":"acme/app","run":42,"big":9007199254740993,"exp":1e3,"neg":-0.5,"ok":true,"no":false}`),
		decodeClaims(t, `{"groups":["a","b<c>",1,2.5,true],"empty":[],"nested":{"z":1,"a":[{"x":null}]},"nil":null}`),
		{"odd key \"<&>\"": "v\x00\xff", "b": []any{"x"}, "a": json.Number("")},
	}
	for _, aud := range auds {
		for _, c := range claims {
			w := wireClaims{Iss: "https://tg.example", Sub: "s", Aud: aud, Iat: 1, Nbf: 2, Exp: 3, Jti: "j",
				Connection: "c", ConnectionID: "id", SourceIss: "https://ci.example", Claims: c}
			want, err := json.Marshal(w)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendWireClaims(nil, w)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("aud %q, claims %v:\n got %s (%v)\nwant %s", aud, c, got, err, want)
			}
		}
	}
}

// An invalid json.Number is refused, as encoding/json refuses it, instead of writing bad JSON.
func TestWireClaimsRefuseAnInvalidNumber(t *testing.T) {
	w := wireClaims{Aud: api.Audience{"a"}, Claims: map[string]any{"n": json.Number("1e")}}
	if _, err := json.Marshal(w); err == nil {
		t.Fatal("encoding/json accepted an invalid number: the reference changed")
	}
	if b, err := appendWireClaims(nil, w); err == nil {
		t.Fatalf("appendWireClaims wrote %s for an invalid number", b)
	}
}

// FuzzWireClaimsMatchEncodingJSON: for any JSON object used as the claims (and any audience
// strings), the hand-written encoder and encoding/json agree byte for byte.
func FuzzWireClaimsMatchEncodingJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"b"}`, `{"n":[1,2.5e-3,-0,"x",true,null],"o":{"k":{"<":">"}}}`,
		`{"\u2028":"\ud800","z":1E+2}`, `{"a":[[],[{}]]}`} {
		f.Add(s, "https://tg.example", "")
		f.Add(s, "aud-1", "aud-2")
	}
	f.Fuzz(func(t *testing.T, claimsJSON, aud1, aud2 string) {
		dec := json.NewDecoder(bytes.NewReader([]byte(claimsJSON)))
		dec.UseNumber()
		var claims map[string]any
		if dec.Decode(&claims) != nil || claims == nil {
			return
		}
		aud := api.Audience{aud1}
		if aud2 != "" {
			aud = append(aud, aud2)
		}
		w := wireClaims{Iss: aud2, Sub: aud1, Aud: aud, Jti: aud1, Claims: claims}
		want, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendWireClaims(nil, w)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("got %s (%v)\nwant %s", got, err, want)
		}
	})
}

// A token with several audiences and mapped claims verifies with a third-party library (aud as an
// array, claims with their JSON types) and comes back from Verify as minted, numbers exact.
func TestMintedAudiencesAndClaimsRoundTrip(t *testing.T) {
	ring := newRing(t)
	now := time.Now().Truncate(time.Second)
	c := sampleClaims(now)
	c.Audience = []string{"https://deploy.example", "https://artifacts.example"}
	c.Claims = decodeClaims(t, `{"repository":"acme/app","run_id":9007199254740993,"protected":true,"groups":["a","b"]}`)
	tok, err := ring.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return ring.currentKey().pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience("https://artifacts.example"))
	if err != nil {
		t.Fatalf("third-party verification with one of the audiences: %v", err)
	}
	mc := parsed.Claims.(jwt.MapClaims)
	if aud, ok := mc["aud"].([]any); !ok || len(aud) != 2 {
		t.Errorf("aud = %#v, want a JSON array of both audiences", mc["aud"])
	}
	got, err := ring.Verify(tok, now)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Audience, c.Audience) || !reflect.DeepEqual(got.Claims, c.Claims) {
		t.Fatalf("Verify gave aud %q claims %#v, want %q %#v", got.Audience, got.Claims, c.Audience, c.Claims)
	}

	// One audience is a string, as before token_audience existed; no mappings, no claims member.
	one := sampleClaims(now)
	one.Audience = []string{"https://deploy.example"}
	tok, _ = ring.Mint(one)
	parsed, _, err = jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if aud := parsed.Claims.(jwt.MapClaims)["aud"]; aud != "https://deploy.example" {
		t.Errorf("a single aud is %#v, want the string", aud)
	}
	if _, has := parsed.Claims.(jwt.MapClaims)["claims"]; has {
		t.Error("a token without claim mappings carries a claims member")
	}

	// Mappings that found nothing still say so: "claims": {}.
	empty := sampleClaims(now)
	empty.Claims = map[string]any{}
	tok, _ = ring.Mint(empty)
	parsed, _, _ = jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if m, ok := parsed.Claims.(jwt.MapClaims)["claims"].(map[string]any); !ok || len(m) != 0 {
		t.Errorf("claims = %#v, want an empty object", parsed.Claims.(jwt.MapClaims)["claims"])
	}
}

// BenchmarkMintWithClaims is Mint of a token with two audiences and four mapped claims (a string,
// a number, a boolean, an array): what claim_mappings and token_audience add to BenchmarkMint.
func BenchmarkMintWithClaims(b *testing.B) {
	ring := newRing(b)
	c := sampleClaims(time.Now())
	c.Audience = []string{"https://deploy.example", "https://artifacts.example"}
	c.Claims = decodeClaims(b, `{"repository":"acme/app","run_id":1234567890,"protected":true,"groups":["a","b"]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ring.Mint(c); err != nil {
			b.Fatal(err)
		}
	}
}
