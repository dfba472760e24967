package api

import (
	"encoding/json"
	"reflect"
	"testing"
)

// An aud claim is a string with one entry and an array otherwise (RFC 7519 §4.1.3); both forms
// are read back.
func TestAudienceJSON(t *testing.T) {
	for _, tc := range []struct {
		aud  Audience
		json string
	}{
		{Audience{"https://a.example"}, `"https://a.example"`},
		{Audience{"a", "b"}, `["a","b"]`},
		{Audience{}, `[]`},
		{nil, `null`},
	} {
		b, err := json.Marshal(tc.aud)
		if err != nil || string(b) != tc.json {
			t.Errorf("%q marshals to %s (%v), want %s", tc.aud, b, err, tc.json)
		}
		var back Audience
		if err := json.Unmarshal(b, &back); err != nil || (len(tc.aud) > 0 && !reflect.DeepEqual(back, tc.aud)) {
			t.Errorf("%s reads back as %q (%v)", b, back, err)
		}
	}
	var in Introspection
	if err := json.Unmarshal([]byte(`{"active":true,"aud":["x","y"]}`), &in); err != nil || len(in.Aud) != 2 {
		t.Fatalf("introspection aud %q, %v", in.Aud, err)
	}
	if b, _ := json.Marshal(Introspection{Active: false}); string(b) != `{"active":false}` {
		t.Errorf("an inactive introspection is %s, want only active", b)
	}
	if err := json.Unmarshal([]byte(`{"aud":7}`), &in); err == nil {
		t.Error("a number aud was accepted")
	}
}
