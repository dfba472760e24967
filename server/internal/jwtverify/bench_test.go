package jwtverify

import (
	"context"
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

// githubBench is a realistic token exchange's verification: a GitHub-shaped RS256 token (RSA-2048,
// 27 claims) from the dev issuer against the effective conditions of a github-preset connection,
// with the JWKS already cached (as on the hot path).
func githubBench(b *testing.B) (*fixture, string) {
	b.Helper()
	f := newFixture(b, devissuer.Options{})
	res := connection.Resolve(api.ConnectionInput{
		Name:         "bench",
		ProviderType: api.ProviderGitHub,
		GitHub:       &api.GitHubSettings{OwnerID: "65", Owner: "octo-org", Ref: "refs/heads/main", Audience: "https://github.com/octo-org"},
		JWKSURL:      f.server.URL,
	}, connection.Options{DefaultAudience: "https://trustgate.example", AllowInsecureJWKS: true})
	f.policy = Policy{JWKSURL: res.JWKSURL, Conditions: res.EffectiveConditions}
	tok, err := f.issuer.Mint("github", nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	r := f.verifier.Verify(context.Background(), tok, f.policy)
	if !r.OK || len(r.Checks) != 9+len(res.EffectiveConditions)+1 {
		b.Fatalf("the benchmark token must be granted: kind %q checks %+v", r.FailedKind, r.Checks)
	}
	return f, tok
}

func BenchmarkVerifyGitHubToken(b *testing.B) {
	f, tok := githubBench(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r := f.verifier.Verify(ctx, tok, f.policy); !r.OK {
			b.Fatal(r.FailedKind)
		}
	}
}

// BenchmarkParseGitHubToken is the decoding part of Verify alone (no signature check), where the
// differences hide under RSA's cost in BenchmarkVerifyGitHubToken.
func BenchmarkParseGitHubToken(b *testing.B) {
	_, tok := githubBench(b)
	b.ReportAllocs()
	for b.Loop() {
		benchParse(b, tok)
	}
}

func benchParse(b *testing.B, tok string) {
	if _, _, _, _, _, err := parseCompact(tok); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDecodeClaims is what the hand-written decoder of jsonobj.go is for: the header and
// claims of a GitHub-shaped token (27 claims) decoded by decodeHeader + decodeObject, and by the
// encoding/json Decoder with UseNumber that it replaces (decodeObjectStdlib, the reference of
// TestDecodeObjectMatchesEncodingJSON and FuzzDecodeObjectMatchesEncodingJSON).
func BenchmarkDecodeClaims(b *testing.B) {
	_, tok := githubBench(b)
	h, rest, _ := strings.Cut(tok, ".")
	p, _, _ := strings.Cut(rest, ".")
	header, err := b64.DecodeString(h)
	if err != nil {
		b.Fatal(err)
	}
	payload, err := b64.DecodeString(p)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decodeObject", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			// parseCompact decodes from one string holding header and payload.
			text := string(header) + string(payload)
			if _, err := decodeHeader(text[:len(header)]); err != nil {
				b.Fatal(err)
			}
			if _, err := decodeObject(text[len(header):]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeObjectStdlib(header); err != nil {
				b.Fatal(err)
			}
			if _, err := decodeObjectStdlib(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyGitHubTokenByDiscovery is BenchmarkVerifyGitHubToken with the keys found through
// the issuer's discovery document (issuer_url; both documents cached): the discovery check should
// add no allocation.
func BenchmarkVerifyGitHubTokenByDiscovery(b *testing.B) {
	f, tok := githubBench(b)
	p := f.policy
	p.JWKSURL, p.IssuerURL = "", f.server.Issuer.URL
	ctx := context.Background()
	if r := f.verifier.Verify(ctx, tok, p); !r.OK {
		b.Fatal(r.FailedKind)
	}
	b.ReportAllocs()
	for b.Loop() {
		if r := f.verifier.Verify(ctx, tok, p); !r.OK {
			b.Fatal(r.FailedKind)
		}
	}
}

// BenchmarkVerifyGitHubTokenInline is BenchmarkVerifyGitHubToken with the keys given inline.
func BenchmarkVerifyGitHubTokenInline(b *testing.B) {
	f, tok := githubBench(b)
	doc, err := f.issuer.JWKS()
	if err != nil {
		b.Fatal(err)
	}
	p := f.policy
	p.JWKSURL, p.Inline = "", ParseInlineKeys(string(doc))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r := f.verifier.Verify(ctx, tok, p); !r.OK {
			b.Fatal(r.FailedKind)
		}
	}
}
