package jwtverify

import "fmt"

// InlineKeys are a connection's inline JWKS (CONTRACT.md §1 jwks), parsed once when the
// connection is loaded: nothing is ever fetched for them. The same rules as a fetched JWKS apply
// (ParseJWKS: RSA 2048–8192 bits, a key's alg must match the token's, unusable keys are reported
// with the reason).
type InlineKeys struct {
	set *KeySet
	err error
}

// ParseInlineKeys parses an inline JWKS document. It never fails: a document without a usable
// key gives InlineKeys whose every lookup says why (the connection package refused private and
// malformed keys when the connection was saved; ParseJWKS may still refuse, e.g., a 1024-bit RSA
// key).
func ParseInlineKeys(doc string) *InlineKeys {
	keys, ignored, err := ParseJWKS([]byte(doc))
	if err != nil {
		return &InlineKeys{err: fmt.Errorf("%w: the inline JWKS: %v", ErrUnknownKID, err)}
	}
	set := &KeySet{URL: "inline", Keys: keys, Ignored: ignored}
	set.size = set.footprint()
	return &InlineKeys{set: set}
}

// lookup returns the key kid, or why there is none.
func (k *InlineKeys) lookup(kid string) (JWK, error) {
	if k.err != nil {
		return JWK{}, k.err
	}
	return k.set.find(kid)
}

// Len is the number of usable keys (0 when the document has none).
func (k *InlineKeys) Len() int {
	if k.set == nil {
		return 0
	}
	return len(k.set.Keys)
}
