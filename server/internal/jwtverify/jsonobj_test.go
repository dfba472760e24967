package jwtverify

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// decodeObjectStdlib is the reference: what parseCompact did before it had its own decoder
// (encoding/json's Decoder with UseNumber into a map, nothing but whitespace after the object).
func decodeObjectStdlib(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, errInvalidJSON
	}
	if m == nil {
		return nil, errNullObject
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errTrailingData
	}
	return m, nil
}

// headerOf reads a decoded header map the way parseCompact used to.
func headerOf(m map[string]any) jwsHeader {
	var h jwsHeader
	h.alg, h.algString = m["alg"].(string)
	var kid any
	kid, h.kidPresent = m["kid"]
	h.kid, h.kidString = kid.(string)
	_, h.crit = m["crit"]
	return h
}

var jsonObjectSeeds = []string{
	`{}`, ` {} `, "\t{\r\n}\n", `{"a":1}`, `{"a":1,}`, `{,}`, `{"a" 1}`, `{"a":}`, `{"a":1 "b":2}`, `{1:2}`,
	`{"a":1}{}`, `{"a":1} x`, `{"a":1}}`, `{"a":1}]`, `{"a":1},`, `{"a":1}  `, `{"a":1}` + "\x00",
	`null`, ` null `, `nullx`, `null}`, `nul`, `[]`, `[1]`, `"s"`, `1`, `true`, ``, ` `, `{`, `}`,
	`{"a":1,"a":2}`, `{"a":{"x":1},"a":{"y":2}}`, `{"a":[1,"2",true,false,null,{},[]]}`,
	`{"n":9007199254740993,"m":9007199254740992}`, `{"n":-0,"m":0.0,"e":1e400,"f":1E+2,"g":-1.5e-3}`,
	`{"n":01}`, `{"n":-}`, `{"n":1.}`, `{"n":.5}`, `{"n":1e}`, `{"n":+1}`, `{"n":0x1}`, `{"n":NaN}`,
	`{"n":1.5e+}`, `{"t":tru}`, `{"t":True}`, `{"t":nulll}`,
	`{"s":"a\"b\\c\/d\be\ff\ng\rh\ti"}`, `{"s":"\u00e9\u20AC\ud83d\ude00"}`, `{"s":"\ud83d"}`,
	`{"s":"\ude00\ud83d"}`, `{"s":"\ud83dx"}`, `{"s":"\ud83d\u0041"}`, `{"s":"\ud83d\ud83d\ude00"}`,
	`{"s":"\u12"}`, `{"s":"\uZZZZ"}`, `{"s":"\ud83d\uZZZZ"}`, `{"s":"\x"}`, `{"s":"\'"}`, `{"s":"a`,
	"{\"s\":\"\x01\"}", "{\"s\":\"\x7f\"}", "{\"s\":\"\xff\"}", "{\"s\":\"a\xc3\"}", "{\"s\":\"\xed\xa0\x80\"}",
	"{\"s\":\"\xef\xbf\xbd\"}", "{\"\xff\":1}", "{\"s\":\"\xff\\n\xfe\"}", "{\"s\":\"é€😀\"}",
	`{"k\u0000":"v"}`, `{"a\\":"b"}`, `{"a":"b\\"}`, `{"a":"\\\"}`,
	`{"iss":"https://token.actions.githubusercontent.com","aud":["a","b"],"exp":1632493867,"google":{"compute_engine":{"project_id":"p"}}}`,
	"\ufeff{}", "{}\ufeff", `{"a":[}`, `{"a":[1,]}`, `{"a":[,1]}`, `{"a":{"b":}}`,
}

func checkDecodersAgree(t *testing.T, in string) {
	t.Helper()
	want, wantErr := decodeObjectStdlib([]byte(in))
	got, gotErr := decodeObject(in)
	if !errors.Is(gotErr, wantErr) || !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeObject(%q) = %#v, %v; encoding/json gives %#v, %v", in, got, gotErr, want, wantErr)
	}
	h, hErr := decodeHeader(in)
	if !errors.Is(hErr, wantErr) {
		t.Fatalf("decodeHeader(%q) error %v; encoding/json gives %v", in, hErr, wantErr)
	}
	if wantErr == nil && h != headerOf(want) {
		t.Fatalf("decodeHeader(%q) = %+v, want %+v", in, h, headerOf(want))
	}
	// decodeObjectKeeping: the same errors, and the kept members of the same object.
	keep := map[string]bool{"a": true, "alg": true, "sub": true, "": true}
	k, kErr := decodeObjectKeeping(in, keep)
	if !errors.Is(kErr, wantErr) {
		t.Fatalf("decodeObjectKeeping(%q) error %v; encoding/json gives %v", in, kErr, wantErr)
	}
	if wantErr == nil {
		kept := map[string]any{}
		for name, v := range want {
			if keep[name] {
				kept[name] = v
			}
		}
		if !reflect.DeepEqual(k, kept) {
			t.Fatalf("decodeObjectKeeping(%q) = %#v, want %#v", in, k, kept)
		}
	}
}

func TestDecodeObjectMatchesEncodingJSON(t *testing.T) {
	for _, in := range jsonObjectSeeds {
		checkDecodersAgree(t, in)
	}
	headers := []string{
		`{"alg":"RS256","kid":"k","typ":"JWT"}`, `{"alg":"RS256","alg":"ES256"}`, `{"alg":"RS256","alg":5}`,
		`{"alg":5,"alg":"RS256"}`, `{"alg":"RS256","kid":null}`, `{"alg":"RS256","kid":7}`,
		`{"alg":"RS256","kid":"a","kid":{}}`, `{"alg":"RS256","crit":null}`, `{"alg":"RS256","crit":["b64"]}`,
		`{"alg":"RS\u0032\u0035\u0036","kid":"\ud83d"}`, `{"kid":"k"}`, `{"jwk":{"kty":"RSA","n":"x"},"alg":"RS256"}`,
	}
	for _, in := range headers {
		checkDecodersAgree(t, in)
	}
}

func TestDecodeObjectKeepsExactNumberText(t *testing.T) {
	m, err := decodeObject(`{"a":9007199254740993,"b":9007199254740992,"c":42.0,"d":1e2}`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": json.Number("9007199254740993"), "b": json.Number("9007199254740992"),
		"c": json.Number("42.0"), "d": json.Number("1e2")}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %#v, want %#v", m, want)
	}
}

func TestDecodeObjectNestingLimitIsEncodingJSONs(t *testing.T) {
	for _, depth := range []int{maxNestingDepth - 1, maxNestingDepth, maxNestingDepth + 1} {
		// depth counts the outer object: {"a":[[...]]}
		in := `{"a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
		checkDecodersAgree(t, in)
		in = strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
		checkDecodersAgree(t, in)
	}
	if _, err := decodeObject(`{"a":` + strings.Repeat("[", maxNestingDepth) + strings.Repeat("]", maxNestingDepth) + `}`); err == nil {
		t.Fatal("nesting deeper than encoding/json's limit must be refused")
	}
}

// FuzzDecodeObjectMatchesEncodingJSON: the claims decoder gives exactly what encoding/json with
// UseNumber gives (values, number text, last duplicate wins, U+FFFD for bad UTF-8, errors).
func FuzzDecodeObjectMatchesEncodingJSON(f *testing.F) {
	for _, s := range jsonObjectSeeds {
		f.Add(s)
	}
	f.Fuzz(checkDecodersAgree)
}
