package principal

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

func TestNewKeyShapeAndHash(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		key, hash, err := NewKey()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(key, "tg_") || !LooksLikeKey(key) {
			t.Fatalf("key %q lacks the tg_ prefix", key[:3])
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(key, "tg_"))
		if err != nil || len(raw) != 32 {
			t.Fatalf("key body is not base64url of 32 bytes (%d bytes, %v)", len(raw), err)
		}
		if hash != HashKey(key) {
			t.Fatal("NewKey's hash differs from HashKey(key)")
		}
		if seen[key] {
			t.Fatal("NewKey repeated a key")
		}
		seen[key] = true
	}
}

func TestHashKeyIsSHA256Hex(t *testing.T) {
	// sha256("tg_example"), computed independently with `printf tg_example | sha256sum`.
	const want = "849bcdf2697a91c638e19b84148f16dfc88df7d48e384922ea779360f0837bc4"
	got := HashKey("tg_example")
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(got) {
		t.Fatalf("HashKey = %q, want 64 hex digits", got)
	}
	if got != want {
		t.Errorf("HashKey(tg_example) = %s, want %s", got, want)
	}
	if HashKey("tg_example2") == got {
		t.Error("different keys hash alike")
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"ci-bot-1", true},
		{"a", true},
		{"0", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"-alice", false},
		{"alice-", false},
		{"Alice", false},
		{"al ice", false},
		{"al_ice", false},
		{"alice\n", false},
	}
	for _, tt := range tests {
		if err := ValidateName(tt.name); (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestValidateRole(t *testing.T) {
	tests := []struct {
		role string
		ok   bool
	}{
		{"devops_admin", true},
		{"security_admin", true},
		{"auditor", true},
		{"admin", false},
		{"", false},
		{"Auditor", false},
	}
	for _, tt := range tests {
		if err := ValidateRole(tt.role); (err == nil) != tt.ok {
			t.Errorf("ValidateRole(%q) = %v, want ok=%v", tt.role, err, tt.ok)
		}
	}
}
