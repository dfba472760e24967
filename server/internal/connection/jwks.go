package connection

import "github.com/trustgate/terraform-provider-trustgate/api/inlinejwks"

// InlineJWKSThumbprints checks an inline JWKS (the connection's `jwks` field) and returns the
// sorted RFC 7638 thumbprints of its keys, what the fingerprint covers. The rule lives in package
// inlinejwks, which the provider's plan-time validator uses too.
func InlineJWKSThumbprints(doc string) ([]string, error) { return inlinejwks.Thumbprints(doc) }
