package harness

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// CryptoResult is the crypto limit: what the machine's cores do with nothing but the two
// signature operations every exchange needs.
type CryptoResult struct {
	Goroutines  int     `json:"goroutines"`
	DurationSec float64 `json:"duration_s"`
	// PairsPerSec is (RS256 verify + ES256 sign) pairs per second on Goroutines goroutines.
	PairsPerSec float64 `json:"pairs_per_s"`
	// VerifyPerSec and SignPerSec are each operation alone, for the record.
	VerifyPerSec float64 `json:"rs256_verify_per_s"`
	SignPerSec   float64 `json:"es256_sign_per_s"`
	// CPUusPerPair is the CPU microseconds one pair took (user + system, all goroutines).
	CPUusPerPair float64 `json:"cpu_us_per_pair"`
}

// CryptoLimit measures, on goroutines goroutines for dur, how many pairs of (verify the RS256
// signature of ciToken with pub, sign an access-token-sized payload with ES256) the machine does,
// with the same library calls the server makes. It then spends dur/4 on each operation alone.
func CryptoLimit(ctx context.Context, ciToken string, pub *rsa.PublicKey, goroutines int, dur time.Duration) (CryptoResult, error) {
	if goroutines <= 0 {
		goroutines = runtime.GOMAXPROCS(0)
	}
	i := strings.LastIndexByte(ciToken, '.')
	if i < 0 {
		return CryptoResult{}, fmt.Errorf("the CI token is not a JWS")
	}
	signingInput := ciToken[:i]
	sig, err := base64.RawURLEncoding.DecodeString(ciToken[i+1:])
	if err != nil {
		return CryptoResult{}, err
	}
	if err := jwt.SigningMethodRS256.Verify(signingInput, sig, pub); err != nil {
		return CryptoResult{}, fmt.Errorf("the CI token does not verify with the issuer's key: %w", err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return CryptoResult{}, err
	}
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"bench","typ":"JWT"}`))
	payload, _ := json.Marshal(map[string]any{
		"iss": "http://127.0.0.1:8080", "aud": "http://127.0.0.1:8080", "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
		"iat": time.Now().Unix(), "nbf": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
		"jti": "0d9d6ad8-6f4e-4b7e-9d1c-3f1f6d3f8a11", "connection": "bench-github",
		"connection_id": "5b0c7f7e-1c1a-4c55-8f0c-0c5f2b8f7b1e", "source_iss": "https://token.actions.githubusercontent.com",
	})
	accessInput := header + "." + base64.RawURLEncoding.EncodeToString(payload)

	verify := func() error { return jwt.SigningMethodRS256.Verify(signingInput, sig, pub) }
	sign := func() error { _, err := jwt.SigningMethodES256.Sign(accessInput, ecKey); return err }
	pair := func() error {
		if err := verify(); err != nil {
			return err
		}
		return sign()
	}
	res := CryptoResult{Goroutines: goroutines, DurationSec: dur.Seconds()}
	cpu0 := selfCPU()
	var pairs int64
	if res.PairsPerSec, pairs, err = opsPerSec(ctx, goroutines, dur, pair); err != nil {
		return res, err
	}
	if pairs > 0 {
		res.CPUusPerPair = round1(float64((selfCPU() - cpu0).Microseconds()) / float64(pairs))
	}
	if res.VerifyPerSec, _, err = opsPerSec(ctx, goroutines, dur/4, verify); err != nil {
		return res, err
	}
	if res.SignPerSec, _, err = opsPerSec(ctx, goroutines, dur/4, sign); err != nil {
		return res, err
	}
	return res, nil
}

// opsPerSec runs op in a tight loop on goroutines goroutines for dur.
func opsPerSec(ctx context.Context, goroutines int, dur time.Duration, op func() error) (float64, int64, error) {
	var n atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	until := start.Add(dur)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local int64
			for ctx.Err() == nil && time.Now().Before(until) {
				if err := op(); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				local++
			}
			n.Add(local)
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, 0, err
	}
	return round1(float64(n.Load()) / time.Since(start).Seconds()), n.Load(), nil
}
