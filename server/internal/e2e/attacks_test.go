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
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
)

var b64 = base64.RawURLEncoding

// unix is a NumericDate claim value d from now.
func unix(d time.Duration) json.Number {
	return json.Number(strconv.FormatInt(time.Now().Add(d).Unix(), 10))
}

// segments splits a compact JWS.
func segments(t *testing.T, tok string) (header, payload map[string]any, parts []string) {
	t.Helper()
	parts = strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("minted token has %d segments", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		b, err := b64.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		d := json.NewDecoder(bytesReader(b))
		d.UseNumber()
		if err := d.Decode(dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, payload, parts
}

func encodeSegment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64.EncodeToString(b)
}

// issuerRSAPublicKey reads the issuer's current RSA public key from its JWKS, as an attacker would.
func issuerRSAPublicKey(t *testing.T, iss *issuer) *rsa.PublicKey {
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
func publicJWK(t *testing.T, iss *issuer) map[string]any {
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

func hs256(t *testing.T, header, payload map[string]any, secret []byte) string {
	t.Helper()
	input := encodeSegment(t, header) + "." + encodeSegment(t, payload)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + b64.EncodeToString(mac.Sum(nil))
}

// TestTokenEndpointRefusesAttacks sends every attack of the list to POST /v1/token and
// checks the status (400, never 401), the RFC 6749 error code, the failure kind and request id in
// error_description, and that each refusal of a token is audited as a denied exchange.
func TestTokenEndpointRefusesAttacks(t *testing.T) {
	e := newEnv(t)
	attacker := startIssuer(t, devissuer.Options{})
	weak := startIssuer(t, devissuer.Options{RSABits: 1024})

	generic := func(name, jwksURL string) api.ConnectionInput {
		return api.ConnectionInput{Name: name, JWKSURL: jwksURL, Conditions: []api.Condition{
			{Claim: "iss", Operator: api.OpEquals, Value: ptr(e.iss.URL)},
			{Claim: "aud", Operator: api.OpEquals, Value: ptr(e.s.URL)},
		}}
	}
	conn := e.createActive(t, generic("attack", e.iss.JWKSURL))
	weakIn := generic("weak-key", weak.JWKSURL)
	weakIn.Conditions[0].Value = ptr(weak.URL)
	weakConn := e.createActive(t, weakIn)
	draft := e.createDraft(t, generic("still-draft", e.iss.JWKSURL))
	inactive := e.setStatus(t, e.createActive(t, generic("switched-off", e.iss.JWKSURL)), api.StatusInactive)

	good := func(overrides map[string]any) map[string]any {
		m := map[string]any{"aud": e.s.URL}
		for k, v := range overrides {
			m[k] = v
		}
		return m
	}
	mint := func(overrides map[string]any) string { return e.iss.mint(t, "generic", good(overrides)) }
	mintHeader := func(header map[string]any) string {
		return e.iss.mintWith(t, devissuer.MintOptions{Shape: "generic", Claims: good(nil), Header: header})
	}

	// A well-formed token to take apart.
	header, payload, parts := segments(t, mint(nil))
	sig, sigErr := b64.DecodeString(parts[2])
	if sigErr != nil {
		t.Fatal(sigErr)
	}
	rsaPub := issuerRSAPublicKey(t, e.iss)
	pkix, err := x509.MarshalPKIXPublicKey(rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	pemPKIX := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	pemPKCS1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(rsaPub)})
	withAlg := func(alg string) map[string]any {
		h := map[string]any{}
		for k, v := range header {
			h[k] = v
		}
		h["alg"] = alg
		return h
	}
	tampered := map[string]any{}
	for k, v := range payload {
		tampered[k] = v
	}
	tampered["sub"] = "workload:admin"

	big := mint(map[string]any{"pad": strings.Repeat("a", 13<<10)})
	if len(big) <= 16<<10 {
		t.Fatalf("test setup: the oversized token is only %d bytes", len(big))
	}

	type attack struct {
		name       string
		connection string
		form       url.Values // when set, sent as is (connection and token ignored)
		token      string
		code, kind string
		audited    bool // the refusal reached a connection and must be an audit event
	}
	tokenCase := func(name, token, kind string) attack {
		return attack{name: name, connection: conn.Name, token: token, code: api.ErrInvalidGrant, kind: kind, audited: true}
	}
	base := exchangeForm(conn.Name, mint(nil))
	without := func(k string) url.Values {
		f := url.Values{}
		for key, v := range base {
			if key != k {
				f[key] = v
			}
		}
		return f
	}
	repeated := func(k, v string) url.Values {
		f := without("")
		f.Add(k, v)
		return f
	}
	with := func(k, v string) url.Values {
		f := without(k)
		f.Set(k, v)
		return f
	}

	cases := []attack{
		tokenCase("alg none", encodeSegment(t, withAlg("none"))+"."+parts[1]+".", "algorithm"),
		tokenCase("alg None with the original signature", encodeSegment(t, withAlg("None"))+"."+parts[1]+"."+parts[2], "algorithm"),
		tokenCase("HS256 keyed with the RSA public key (PKIX PEM)", hs256(t, withAlg("HS256"), payload, pemPKIX), "algorithm"),
		tokenCase("HS256 keyed with the RSA public key (PKCS#1 PEM)", hs256(t, withAlg("HS256"), payload, pemPKCS1), "algorithm"),
		tokenCase("HS256 keyed with the RSA modulus", hs256(t, withAlg("HS256"), payload, rsaPub.N.Bytes()), "algorithm"),
		tokenCase("ES256 header on an RSA key", mintHeader(map[string]any{"alg": "ES256"}), "algorithm"),
		tokenCase("unknown kid", mintHeader(map[string]any{"kid": "not-a-published-kid"}), "signature"),
		tokenCase("attacker key offered through jku", attacker.mintWith(t, devissuer.MintOptions{Shape: "generic",
			Claims: good(map[string]any{"iss": e.iss.URL}), Header: map[string]any{"jku": attacker.JWKSURL}}), "signature"),
		tokenCase("attacker key through jku under the victim's kid", attacker.mintWith(t, devissuer.MintOptions{Shape: "generic",
			Claims: good(map[string]any{"iss": e.iss.URL}), Header: map[string]any{"jku": attacker.JWKSURL, "kid": e.iss.KID()}}), "signature"),
		tokenCase("attacker key offered through x5u", attacker.mintWith(t, devissuer.MintOptions{Shape: "generic",
			Claims: good(map[string]any{"iss": e.iss.URL}), Header: map[string]any{"x5u": attacker.URL + "/cert.pem"}}), "signature"),
		tokenCase("attacker key embedded as jwk", attacker.mintWith(t, devissuer.MintOptions{Shape: "generic",
			Claims: good(map[string]any{"iss": e.iss.URL}), Header: map[string]any{"jwk": publicJWK(t, attacker), "kid": nil}}), "signature"),
		tokenCase("expired", mint(map[string]any{"iat": unix(-20 * time.Minute), "nbf": unix(-20 * time.Minute), "exp": unix(-2 * time.Minute)}), "expired"),
		tokenCase("exp missing", mint(map[string]any{"exp": nil}), "expired"),
		tokenCase("not yet valid", mint(map[string]any{"nbf": unix(5 * time.Minute)}), "not_yet_valid"),
		tokenCase("issued in the future", mint(map[string]any{"iat": unix(5 * time.Minute), "exp": unix(15 * time.Minute)}), "issued_in_future"),
		tokenCase("lifetime over 24 h", mint(map[string]any{"exp": unix(24*time.Hour + 2*time.Minute)}), "lifetime"),
		tokenCase("wrong issuer", mint(map[string]any{"iss": "https://evil.example.com"}), "condition"),
		tokenCase("wrong audience", mint(map[string]any{"aud": "https://other.example.com"}), "condition"),
		tokenCase("missing audience", mint(map[string]any{"aud": nil}), "condition"),
		tokenCase("audience array without ours", mint(map[string]any{"aud": []any{"https://a.example.com", "https://b.example.com"}}), "condition"),
		tokenCase("tampered payload", parts[0]+"."+encodeSegment(t, tampered)+"."+parts[2], "signature"),
		tokenCase("signature cut short", parts[0]+"."+parts[1]+"."+b64.EncodeToString(sig[:len(sig)-3]), "signature"),
		// 341 base64url characters cannot encode whole bytes.
		tokenCase("signature segment cut by one character", parts[0]+"."+parts[1]+"."+parts[2][:len(parts[2])-1], "malformed"),
		tokenCase("signature missing", parts[0]+"."+parts[1]+".", "signature"),
		tokenCase("two segments", parts[0]+"."+parts[1], "malformed"),
		tokenCase("four segments", parts[0]+"."+parts[1]+"."+parts[2]+"."+parts[2], "malformed"),
		tokenCase("header not base64", "!!!."+parts[1]+"."+parts[2], "malformed"),
		tokenCase("payload with padding", parts[0]+"."+parts[1]+"=."+parts[2], "malformed"),
		tokenCase("payload in standard base64", parts[0]+"."+strings.NewReplacer("-", "+", "_", "/").Replace(encodeSegment(t, map[string]any{"sub": "???>>>", "x": "~~~"}))+"."+parts[2], "malformed"),
		tokenCase("not a JWT at all", "hello", "malformed"),
		tokenCase("over 16 KiB", big, "malformed"),
		{name: "RSA-1024 key", connection: weakConn.Name, token: weak.mint(t, "generic", good(nil)),
			code: api.ErrInvalidGrant, kind: "signature", audited: true},
		{name: "draft connection", connection: draft.Name, token: mint(nil), code: api.ErrInvalidTarget, audited: true},
		{name: "inactive connection", connection: inactive.Name, token: mint(nil), code: api.ErrInvalidTarget, audited: true},
		{name: "unknown connection", connection: "no-such-connection", token: mint(nil), code: api.ErrInvalidTarget, audited: true},
		{name: "wrong grant_type", form: with("grant_type", "client_credentials"), code: api.ErrUnsupportedGrantType},
		{name: "wrong subject_token_type", form: with("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"), code: api.ErrInvalidRequest},
		{name: "missing grant_type", form: without("grant_type"), code: api.ErrInvalidRequest},
		{name: "missing subject_token", form: without("subject_token"), code: api.ErrInvalidRequest},
		{name: "missing subject_token_type", form: without("subject_token_type"), code: api.ErrInvalidRequest},
		{name: "missing connection", form: without("connection"), code: api.ErrInvalidRequest},
		{name: "empty body", form: url.Values{}, code: api.ErrInvalidRequest},
		// RFC 6749 §3.2 and §5.2: a repeated parameter is an invalid_request (otherwise a proxy
		// that reads the last value and the server that reads the first disagree).
		{name: "repeated connection", form: repeated("connection", inactive.Name), code: api.ErrInvalidRequest},
		{name: "repeated subject_token", form: repeated("subject_token", "x.y.z"), code: api.ErrInvalidRequest},
		{name: "repeated grant_type", form: repeated("grant_type", "client_credentials"), code: api.ErrInvalidRequest},
	}

	refused := map[string]attack{} // request id → case
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			form := c.form
			if form == nil {
				form = exchangeForm(c.connection, c.token)
			}
			r := e.postForm(t, form)
			mustRefuse(t, r, c.code, c.kind)
			if c.audited {
				refused[r.RequestID] = c
			}
		})
	}

	t.Run("unsupported content type", func(t *testing.T) {
		r := e.postToken(t, "text/plain", []byte(base.Encode()), nil)
		mustRefuse(t, r, api.ErrInvalidRequest, "")
	})
	t.Run("JSON with an unknown field", func(t *testing.T) {
		body := fmt.Sprintf(`{"grant_type":%q,"subject_token":%q,"subject_token_type":%q,"connection":%q,"scope":"admin"}`,
			api.GrantTypeTokenExchange, mint(nil), api.TokenTypeJWT, conn.Name)
		r := e.postToken(t, "application/json", []byte(body), nil)
		mustRefuse(t, r, api.ErrInvalidRequest, "")
	})
	t.Run("JSON with trailing data", func(t *testing.T) {
		body := fmt.Sprintf(`{"grant_type":%q,"subject_token":%q,"subject_token_type":%q,"connection":%q} {}`,
			api.GrantTypeTokenExchange, mint(nil), api.TokenTypeJWT, conn.Name)
		r := e.postToken(t, "application/json", []byte(body), nil)
		mustRefuse(t, r, api.ErrInvalidRequest, "")
	})
	t.Run("JSON that does not parse", func(t *testing.T) {
		r := e.postToken(t, "application/json", []byte(`{"grant_type":`), nil)
		mustRefuse(t, r, api.ErrInvalidRequest, "")
	})

	t.Run("the attacker's key server got no request", func(t *testing.T) {
		if n := attacker.Hits(); n != 0 {
			t.Errorf("the attacker's issuer answered %d requests; jku, x5u and jwk headers must never be fetched", n)
		}
	})

	t.Run("not-active and unknown connections read the same", func(t *testing.T) {
		descs := map[string]bool{}
		for _, name := range []string{draft.Name, inactive.Name, "no-such-connection"} {
			r := e.exchange(t, name, mint(nil))
			descs[strings.ReplaceAll(r.Err.ErrorDescription, r.RequestID, "")] = true
		}
		if len(descs) != 1 {
			t.Errorf("draft, inactive and unknown connections give different descriptions, so names can be probed: %v", descs)
		}
	})

	t.Run("accepted near the limits", func(t *testing.T) {
		cases := map[string]string{
			"audience array with ours":   mint(map[string]any{"aud": []any{"https://a.example.com", e.s.URL}}),
			"expired within the leeway":  mint(map[string]any{"iat": unix(-10 * time.Minute), "nbf": unix(-10 * time.Minute), "exp": unix(-20 * time.Second)}),
			"nbf within the leeway":      mint(map[string]any{"nbf": unix(20 * time.Second)}),
			"iat within the leeway":      mint(map[string]any{"iat": unix(20 * time.Second)}),
			"lifetime exactly 24 h":      mint(map[string]any{"exp": unix(24 * time.Hour)}),
			"just under 16 KiB":          mint(map[string]any{"pad": strings.Repeat("a", 11<<10)}),
			"no kid with a one-key JWKS": mintHeader(map[string]any{"kid": nil}),
		}
		for name, tok := range cases {
			t.Run(name, func(t *testing.T) {
				if name == "just under 16 KiB" && len(tok) > 16<<10 {
					t.Fatalf("test setup: the token is %d bytes", len(tok))
				}
				mustGrant(t, e.exchange(t, conn.Name, tok), time.Hour)
			})
		}
	})

	t.Run("every refusal that named a connection is audited as denied", func(t *testing.T) {
		events := map[string]map[string]bool{}
		all := map[string]string{}
		for _, name := range []string{conn.Name, weakConn.Name, draft.Name, inactive.Name, "no-such-connection"} {
			for id, ev := range e.auditByRequest(t, name) {
				all[id] = ev.Outcome
				if events[id] == nil {
					events[id] = map[string]bool{}
				}
				events[id][ev.Reason] = true
			}
		}
		for id, c := range refused {
			outcome, ok := all[id]
			if !ok {
				t.Errorf("%s (request %s): no token.exchange audit event", c.name, id)
				continue
			}
			if outcome != api.OutcomeDenied {
				t.Errorf("%s (request %s): audit outcome %q, want denied", c.name, id, outcome)
			}
			if c.kind != "" && !events[id][c.kind] {
				t.Errorf("%s (request %s): audit reason %v, want %q", c.name, id, events[id], c.kind)
			}
		}
	})
}
