// Package inlinejwks is the rule for a workload connection's inline `jwks` field (CONTRACT.md §1):
// a JWKS document of public keys only, at most api.MaxInlineJWKSBytes. The server validates and
// fingerprints the field with it, and the Terraform provider checks it at plan time; it is outside
// the server's internal packages so that both use this one definition.
package inlinejwks

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// privateMembers are the JWK members (RFC 7518 §6) that only a private or symmetric key has.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// Thumbprints checks an inline JWKS (the connection's `jwks` field) and returns the RFC
// 7638 SHA-256 thumbprints of its keys, base64url, sorted: what the fingerprint covers, so that
// reordering keys or adding metadata such as `use` changes nothing while a different key changes
// it. It refuses a document that is not a JWKS, a key with private members (an inline JWKS is
// published to whoever reads the connection), symmetric keys, and more than
// api.MaxInlineJWKSBytes. The error says what to fix.
func Thumbprints(doc string) ([]string, error) {
	if len(doc) > api.MaxInlineJWKSBytes {
		return nil, fmt.Errorf("is %d bytes; at most %d are allowed: publish only the current signing keys", len(doc), api.MaxInlineJWKSBytes)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal([]byte(doc), &set); err != nil {
		return nil, fmt.Errorf("is not a JWKS document (a JSON object with a \"keys\" array): %v", err)
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("has no keys: paste the issuer's JWKS document, {\"keys\": [...]}")
	}
	thumbs := make([]string, 0, len(set.Keys))
	for i, raw := range set.Keys {
		var members map[string]any
		if err := json.Unmarshal(raw, &members); err != nil {
			return nil, fmt.Errorf("key %d is not a JSON object", i)
		}
		kid, _ := members["kid"].(string)
		for _, m := range privateMembers {
			if _, ok := members[m]; ok {
				return nil, fmt.Errorf("key %d (kid %q) has the private member %q: an inline JWKS holds public keys only (and this one has leaked: rotate it)", i, kid, m)
			}
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("key %d (kid %q) is not a valid public JWK: %v", i, kid, err)
		}
		if !k.IsPublic() {
			return nil, fmt.Errorf("key %d (kid %q) is not a public key", i, kid)
		}
		sum, err := k.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %v", i, kid, err)
		}
		thumbs = append(thumbs, base64.RawURLEncoding.EncodeToString(sum))
	}
	slices.Sort(thumbs)
	return thumbs, nil
}
