package harness

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
)

// Audience is the `aud` of the benchmark's CI tokens, pinned by its connection's github preset.
const Audience = "trustgate-bench"

// MintTokens signs n distinct GitHub-shaped RS256 tokens (distinct sub, run_id and jti), valid for
// ttl, on every core.
func MintTokens(iss *devissuer.Issuer, n int, ttl time.Duration) ([]string, error) {
	return MintTokensFrom(iss, 0, n, ttl)
}

// MintTokensFrom is MintTokens numbering the runs from first, so that two sets never share a jti.
func MintTokensFrom(iss *devissuer.Issuer, first, n int, ttl time.Duration) ([]string, error) {
	toks := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				run := strconv.Itoa(1_000_000 + first + i)
				toks[i], errs[i] = iss.Mint("github", map[string]any{
					"aud":    Audience,
					"sub":    "repo:octo-org/octo-repo:ref:refs/heads/main:run:" + run,
					"run_id": run,
					"jti":    "bench-" + run,
				}, ttl)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("minting token %d: %w", i, err)
		}
	}
	return toks, nil
}

// rsaPublicKeyFromFile reads the dev issuer's PEM (PKCS#8) private key file and returns its RSA
// public key.
func rsaPublicKeyFromFile(path string) (*rsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	pub, ok := s.Public().(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an RSA key", path)
	}
	return pub, nil
}
