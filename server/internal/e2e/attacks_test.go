package e2e_test

import (
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
)

var b64 = base64.RawURLEncoding

// unix is a NumericDate claim value d from now.
func unix(d time.Duration) json.Number {
	return json.Number(strconv.FormatInt(time.Now().Add(d).Unix(), 10))
}

// attack is one forged token or request sent to POST /v1/token.
type attack struct {
	name  string
	forge func(f *forgery) forged // how the token or the request is forged
	code  string                  // the RFC 6749 error it must get
	kind  string                  // the failed check its description and audit reason name ("": none)
	// audited: the request names a connection, so its refusal must be a denied token.exchange event.
	audited bool
}

// forged is what an attack sends: a form exchange of token through connection, or a raw form, or
// a raw body of a content type.
type forged struct {
	connection, token string
	form              url.Values
	contentType, body string
}

// forgery holds what the attacks are forged from: the victim's connections, a good token taken
// apart, the issuer's public key, and an attacker's and a weak issuer of their own.
type forgery struct {
	t                               *testing.T
	e                               *env
	attacker, weak                  *ciissuer.Issuer
	conn, weakConn, draft, inactive string // connection names
	header, payload                 map[string]any
	parts                           []string // of a good token
	sig                             []byte   // its signature
	rsaPub                          *rsa.PublicKey
	pemPKIX, pemPKCS1               []byte
	goodForm                        url.Values
	attackerJWK                     map[string]any
}

// in is f for the subtest t.
func (f forgery) in(t *testing.T) *forgery { f.t = t; return &f }

// claims are the claims of a good token for the victim's server, overridden.
func (f *forgery) claims(overrides map[string]any) map[string]any {
	return withAudience(f.e.URL, overrides)
}

// mint is a token of the victim's issuer with the claims overridden.
func (f *forgery) mint(overrides map[string]any) string { return f.e.token(f.t, overrides) }

// mintHeader is a good token of the victim's issuer with the header members overridden.
func (f *forgery) mintHeader(header map[string]any) string {
	return f.e.iss.MustMintWith(f.t, devissuer.MintOptions{Shape: "generic", Claims: f.claims(nil), Header: header})
}

// byAttacker is a token of the attacker's key claiming the victim's issuer, with header members.
func (f *forgery) byAttacker(header map[string]any) string {
	return f.attacker.MustMintWith(f.t, devissuer.MintOptions{Shape: "generic",
		Claims: f.claims(map[string]any{"iss": f.e.iss.URL}), Header: header})
}

// headerWith is the good token's header with alg replaced.
func (f *forgery) headerWith(alg string) map[string]any {
	h := maps.Clone(f.header)
	h["alg"] = alg
	return h
}

// segment base64url-encodes v as JSON.
func (f *forgery) segment(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		f.t.Fatal(err)
	}
	return b64.EncodeToString(b)
}

// hs256 signs header.payload with HMAC-SHA256 under secret.
func (f *forgery) hs256(header, payload map[string]any, secret []byte) string {
	input := f.segment(header) + "." + f.segment(payload)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + b64.EncodeToString(mac.Sum(nil))
}

// formWithout is the good form without parameter k; formWith sets k to v; formRepeating adds v.
func (f *forgery) formWithout(k string) url.Values {
	out := url.Values{}
	for key, v := range f.goodForm {
		if key != k {
			out[key] = v
		}
	}
	return out
}

func (f *forgery) formWith(k, v string) url.Values {
	out := f.formWithout(k)
	out.Set(k, v)
	return out
}

func (f *forgery) formRepeating(k, v string) url.Values {
	out := f.formWithout("")
	out.Add(k, v)
	return out
}

func (f *forgery) jsonRequest(extra string) string {
	return fmt.Sprintf(`{"grant_type":%q,"subject_token":%q,"subject_token_type":%q,"connection":%q%s`,
		api.GrantTypeTokenExchange, f.mint(nil), api.TokenTypeJWT, f.conn, extra)
}

// tokenAttack is an attack on the victim's active connection by a forged token: refused invalid_grant,
// naming kind, and audited.
func tokenAttack(name, kind string, forge func(f *forgery) string) attack {
	return attack{name: name, code: api.ErrInvalidGrant, kind: kind, audited: true,
		forge: func(f *forgery) forged { return forged{connection: f.conn, token: forge(f)} }}
}

// formAttack is an attack by a malformed RFC 8693 form: refused with code before any connection is
// looked at.
func formAttack(name, code string, forge func(f *forgery) url.Values) attack {
	return attack{name: name, code: code, forge: func(f *forgery) forged { return forged{form: forge(f)} }}
}

// bodyAttack is an attack by a raw body of a content type: refused invalid_request.
func bodyAttack(name, contentType string, forge func(f *forgery) string) attack {
	return attack{name: name, code: api.ErrInvalidRequest,
		forge: func(f *forgery) forged { return forged{contentType: contentType, body: forge(f)} }}
}

// attacks is every attack of the list: one row each.
var attacks = []attack{
	// The algorithm is the key's, whatever the header says.
	tokenAttack("alg none", "algorithm", func(f *forgery) string { return f.segment(f.headerWith("none")) + "." + f.parts[1] + "." }),
	tokenAttack("alg None with the original signature", "algorithm", func(f *forgery) string {
		return f.segment(f.headerWith("None")) + "." + f.parts[1] + "." + f.parts[2]
	}),
	tokenAttack("HS256 keyed with the RSA public key (PKIX PEM)", "algorithm", func(f *forgery) string {
		return f.hs256(f.headerWith("HS256"), f.payload, f.pemPKIX)
	}),
	tokenAttack("HS256 keyed with the RSA public key (PKCS#1 PEM)", "algorithm", func(f *forgery) string {
		return f.hs256(f.headerWith("HS256"), f.payload, f.pemPKCS1)
	}),
	tokenAttack("HS256 keyed with the RSA modulus", "algorithm", func(f *forgery) string {
		return f.hs256(f.headerWith("HS256"), f.payload, f.rsaPub.N.Bytes())
	}),
	tokenAttack("ES256 header on an RSA key", "algorithm", func(f *forgery) string { return f.mintHeader(map[string]any{"alg": "ES256"}) }),
	// Keys come from the connection's JWKS URL only.
	tokenAttack("unknown kid", "signature", func(f *forgery) string { return f.mintHeader(map[string]any{"kid": "not-a-published-kid"}) }),
	tokenAttack("attacker key offered through jku", "signature", func(f *forgery) string {
		return f.byAttacker(map[string]any{"jku": f.attacker.JWKSURL})
	}),
	tokenAttack("attacker key through jku under the victim's kid", "signature", func(f *forgery) string {
		return f.byAttacker(map[string]any{"jku": f.attacker.JWKSURL, "kid": f.e.iss.KID()})
	}),
	tokenAttack("attacker key offered through x5u", "signature", func(f *forgery) string {
		return f.byAttacker(map[string]any{"x5u": f.attacker.URL + "/cert.pem"})
	}),
	tokenAttack("attacker key embedded as jwk", "signature", func(f *forgery) string {
		return f.byAttacker(map[string]any{"jwk": f.attackerJWK, "kid": nil})
	}),
	{name: "RSA-1024 key", code: api.ErrInvalidGrant, kind: "signature", audited: true, forge: func(f *forgery) forged {
		return forged{connection: f.weakConn, token: f.weak.MustMint(f.t, "generic", f.claims(nil))}
	}},
	// Time and lifetime.
	tokenAttack("expired", "expired", func(f *forgery) string {
		return f.mint(map[string]any{"iat": unix(-20 * time.Minute), "nbf": unix(-20 * time.Minute), "exp": unix(-2 * time.Minute)})
	}),
	tokenAttack("exp missing", "expired", func(f *forgery) string { return f.mint(map[string]any{"exp": nil}) }),
	tokenAttack("not yet valid", "not_yet_valid", func(f *forgery) string { return f.mint(map[string]any{"nbf": unix(5 * time.Minute)}) }),
	tokenAttack("issued in the future", "issued_in_future", func(f *forgery) string {
		return f.mint(map[string]any{"iat": unix(5 * time.Minute), "exp": unix(15 * time.Minute)})
	}),
	tokenAttack("lifetime over 24 h", "lifetime", func(f *forgery) string { return f.mint(map[string]any{"exp": unix(24*time.Hour + 2*time.Minute)}) }),
	// Issuer and audience.
	tokenAttack("wrong issuer", "condition", func(f *forgery) string { return f.mint(map[string]any{"iss": "https://evil.example.com"}) }),
	tokenAttack("wrong audience", "condition", func(f *forgery) string { return f.mint(map[string]any{"aud": "https://other.example.com"}) }),
	tokenAttack("missing audience", "condition", func(f *forgery) string { return f.mint(map[string]any{"aud": nil}) }),
	tokenAttack("audience array without ours", "condition", func(f *forgery) string {
		return f.mint(map[string]any{"aud": []any{"https://a.example.com", "https://b.example.com"}})
	}),
	// Signature and encoding.
	tokenAttack("tampered payload", "signature", func(f *forgery) string {
		tampered := maps.Clone(f.payload)
		tampered["sub"] = "workload:admin"
		return f.parts[0] + "." + f.segment(tampered) + "." + f.parts[2]
	}),
	tokenAttack("signature cut short", "signature", func(f *forgery) string {
		return f.parts[0] + "." + f.parts[1] + "." + b64.EncodeToString(f.sig[:len(f.sig)-3])
	}),
	// 341 base64url characters cannot encode whole bytes.
	tokenAttack("signature segment cut by one character", "malformed", func(f *forgery) string {
		return f.parts[0] + "." + f.parts[1] + "." + f.parts[2][:len(f.parts[2])-1]
	}),
	tokenAttack("signature missing", "signature", func(f *forgery) string { return f.parts[0] + "." + f.parts[1] + "." }),
	tokenAttack("two segments", "malformed", func(f *forgery) string { return f.parts[0] + "." + f.parts[1] }),
	tokenAttack("four segments", "malformed", func(f *forgery) string { return f.parts[0] + "." + f.parts[1] + "." + f.parts[2] + "." + f.parts[2] }),
	tokenAttack("header not base64", "malformed", func(f *forgery) string { return "!!!." + f.parts[1] + "." + f.parts[2] }),
	tokenAttack("payload with padding", "malformed", func(f *forgery) string { return f.parts[0] + "." + f.parts[1] + "=." + f.parts[2] }),
	tokenAttack("payload in standard base64", "malformed", func(f *forgery) string {
		std := strings.NewReplacer("-", "+", "_", "/").Replace(f.segment(map[string]any{"sub": "???>>>", "x": "~~~"}))
		return f.parts[0] + "." + std + "." + f.parts[2]
	}),
	tokenAttack("not a JWT at all", "malformed", func(*forgery) string { return "hello" }),
	tokenAttack("over 16 KiB", "malformed", func(f *forgery) string {
		big := f.mint(map[string]any{"pad": strings.Repeat("a", 13<<10)})
		if len(big) <= 16<<10 {
			f.t.Fatalf("test setup: the oversized token is only %d bytes", len(big))
		}
		return big
	}),
	// Connections that may not issue, and those that do not exist, read the same.
	{name: "draft connection", code: api.ErrInvalidTarget, audited: true,
		forge: func(f *forgery) forged { return forged{connection: f.draft, token: f.mint(nil)} }},
	{name: "inactive connection", code: api.ErrInvalidTarget, audited: true,
		forge: func(f *forgery) forged { return forged{connection: f.inactive, token: f.mint(nil)} }},
	{name: "unknown connection", code: api.ErrInvalidTarget, audited: true,
		forge: func(f *forgery) forged { return forged{connection: "no-such-connection", token: f.mint(nil)} }},
	// The RFC 8693 request itself.
	formAttack("wrong grant_type", api.ErrUnsupportedGrantType, func(f *forgery) url.Values { return f.formWith("grant_type", "client_credentials") }),
	formAttack("wrong subject_token_type", api.ErrInvalidRequest, func(f *forgery) url.Values {
		return f.formWith("subject_token_type", "urn:ietf:params:oauth:token-type:access_token")
	}),
	formAttack("missing grant_type", api.ErrInvalidRequest, func(f *forgery) url.Values { return f.formWithout("grant_type") }),
	formAttack("missing subject_token", api.ErrInvalidRequest, func(f *forgery) url.Values { return f.formWithout("subject_token") }),
	formAttack("missing subject_token_type", api.ErrInvalidRequest, func(f *forgery) url.Values { return f.formWithout("subject_token_type") }),
	formAttack("missing connection", api.ErrInvalidRequest, func(f *forgery) url.Values { return f.formWithout("connection") }),
	formAttack("empty body", api.ErrInvalidRequest, func(*forgery) url.Values { return url.Values{} }),
	// RFC 6749 §3.2 and §5.2: a repeated parameter is an invalid_request (otherwise a proxy that
	// reads the last value and the server that reads the first disagree).
	formAttack("repeated connection", api.ErrInvalidRequest, func(f *forgery) url.Values { return f.formRepeating("connection", f.inactive) }),
	formAttack("repeated subject_token", api.ErrInvalidRequest, func(f *forgery) url.Values { return f.formRepeating("subject_token", "x.y.z") }),
	formAttack("repeated grant_type", api.ErrInvalidRequest, func(f *forgery) url.Values {
		return f.formRepeating("grant_type", "client_credentials")
	}),
	bodyAttack("unsupported content type", "text/plain", func(f *forgery) string { return f.goodForm.Encode() }),
	bodyAttack("JSON with an unknown field", "application/json", func(f *forgery) string { return f.jsonRequest(`,"scope":"admin"}`) }),
	bodyAttack("JSON with trailing data", "application/json", func(f *forgery) string { return f.jsonRequest(`} {}`) }),
	bodyAttack("JSON that does not parse", "application/json", func(*forgery) string { return `{"grant_type":` }),
}

// TestTokenEndpointRefusesAttacks sends every attack of the table to POST /v1/token and checks the
// status (400, never 401), the RFC 6749 error code, the failure kind and request id in
// error_description, and that each refusal that names a connection is audited as a denied exchange.
func TestTokenEndpointRefusesAttacks(t *testing.T) {
	e := newEnv(t)
	f := newForgery(t, e)

	refused := map[string]attack{} // request id → attack
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			req := a.forge(f.in(t))
			var r testkit.TokenResult
			switch {
			case req.form != nil:
				r = e.PostForm(req.form, nil)
			case req.contentType != "":
				r = e.PostToken(req.contentType, []byte(req.body), nil)
			default:
				r = e.Exchange(req.connection, req.token)
			}
			testkit.MustRefuse(t, r, a.code, a.kind)
			if a.audited {
				refused[r.RequestID] = a
			}
		})
	}

	t.Run("the attacker's key server got no request", func(t *testing.T) {
		if n := f.attacker.Hits(); n != 0 {
			t.Errorf("the attacker's issuer answered %d requests; jku, x5u and jwk headers must never be fetched", n)
		}
	})

	t.Run("not-active and unknown connections read the same", func(t *testing.T) {
		descs := map[string]bool{}
		for _, name := range []string{f.draft, f.inactive, "no-such-connection"} {
			r := e.Exchange(name, e.token(t, nil)).Answered(t)
			descs[strings.ReplaceAll(r.Refusal.ErrorDescription, r.RequestID, "")] = true
		}
		if len(descs) != 1 {
			t.Errorf("draft, inactive and unknown connections give different descriptions, so names can be probed: %v", descs)
		}
	})

	t.Run("accepted near the limits", func(t *testing.T) {
		accepted := map[string]func(f *forgery) string{
			"audience array with ours": func(f *forgery) string { return f.mint(map[string]any{"aud": []any{"https://a.example.com", e.URL}}) },
			"expired within the leeway": func(f *forgery) string {
				return f.mint(map[string]any{"iat": unix(-10 * time.Minute), "nbf": unix(-10 * time.Minute), "exp": unix(-20 * time.Second)})
			},
			"nbf within the leeway": func(f *forgery) string { return f.mint(map[string]any{"nbf": unix(20 * time.Second)}) },
			"iat within the leeway": func(f *forgery) string { return f.mint(map[string]any{"iat": unix(20 * time.Second)}) },
			"lifetime exactly 24 h": func(f *forgery) string { return f.mint(map[string]any{"exp": unix(24 * time.Hour)}) },
			"just under 16 KiB": func(f *forgery) string {
				tok := f.mint(map[string]any{"pad": strings.Repeat("a", 11<<10)})
				if len(tok) > 16<<10 {
					f.t.Fatalf("test setup: the token is %d bytes", len(tok))
				}
				return tok
			},
			"no kid with a one-key JWKS": func(f *forgery) string { return f.mintHeader(map[string]any{"kid": nil}) },
		}
		for name, forge := range accepted {
			t.Run(name, func(t *testing.T) {
				testkit.MustGrant(t, e.Exchange(f.conn, forge(f.in(t))), time.Hour)
			})
		}
	})

	t.Run("every refusal that named a connection is audited as denied", func(t *testing.T) {
		reasons := map[string]map[string]bool{}
		outcomes := map[string]string{}
		for _, name := range []string{f.conn, f.weakConn, f.draft, f.inactive, "no-such-connection"} {
			for id, ev := range e.ExchangeEvents(t, name) {
				outcomes[id] = ev.Outcome
				if reasons[id] == nil {
					reasons[id] = map[string]bool{}
				}
				reasons[id][ev.Reason] = true
			}
		}
		for id, a := range refused {
			outcome, ok := outcomes[id]
			if !ok {
				t.Errorf("%s (request %s): no token.exchange audit event", a.name, id)
				continue
			}
			if outcome != api.OutcomeDenied {
				t.Errorf("%s (request %s): audit outcome %q, want denied", a.name, id, outcome)
			}
			if a.kind != "" && !reasons[id][a.kind] {
				t.Errorf("%s (request %s): audit reason %v, want %q", a.name, id, reasons[id], a.kind)
			}
		}
	})
}

// newForgery sets up the victim's connections (active, active with a weak key, draft, inactive),
// an attacker's issuer, and the pieces of a good token.
func newForgery(t *testing.T, e *env) forgery {
	t.Helper()
	f := forgery{t: t, e: e,
		attacker: ciissuer.Start(t, devissuer.Options{}),
		weak:     ciissuer.Start(t, devissuer.Options{RSABits: 1024}),
	}
	f.conn = e.CreateActive(t, e.generic("attack")).Name
	weakIn := testkit.GenericInput("weak-key", f.weak.URL, f.weak.JWKSURL, e.URL)
	f.weakConn = e.CreateActive(t, weakIn).Name
	f.draft = e.CreateDraft(t, e.generic("still-draft")).Name
	f.inactive = e.SetStatus(t, e.CreateActive(t, e.generic("switched-off")), api.StatusInactive).Name

	f.header, f.payload, f.parts = testkit.Segments(t, e.token(t, nil))
	var err error
	if f.sig, err = b64.DecodeString(f.parts[2]); err != nil {
		t.Fatal(err)
	}
	f.rsaPub = issuerRSAPublicKey(t, e.iss)
	pkix, err := x509.MarshalPKIXPublicKey(f.rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	f.pemPKIX = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	f.pemPKCS1 = pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(f.rsaPub)})
	f.attackerJWK = publicJWK(t, f.attacker)
	f.goodForm = testkit.ExchangeForm(f.conn, e.token(t, nil))
	return f
}

// issuerRSAPublicKey reads the issuer's current RSA public key from its JWKS, as an attacker would.
func issuerRSAPublicKey(t *testing.T, iss *ciissuer.Issuer) *rsa.PublicKey {
	t.Helper()
	b, err := iss.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	kf, err := keyfunc.NewJWKSetJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	key, err := kf.Keyfunc(&jwt.Token{Header: map[string]any{"kid": iss.KID(), "alg": "RS256"}, Method: jwt.SigningMethodRS256})
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := key.(*rsa.PublicKey)
	if !ok {
		t.Fatalf("issuer key is a %T", key)
	}
	return pub
}

// publicJWK is the issuer's current key as a JWK object (for an embedded `jwk` header).
func publicJWK(t *testing.T, iss *ciissuer.Issuer) map[string]any {
	t.Helper()
	b, err := iss.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("issuer JWKS: %v", err)
	}
	return set.Keys[len(set.Keys)-1]
}
