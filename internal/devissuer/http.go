package devissuer

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// MintRequest is the body of POST /mint.
type MintRequest struct {
	Shape      string         `json:"shape"`
	Claims     map[string]any `json:"claims"`
	TTLSeconds int64          `json:"ttl_seconds"`
}

// MintResponse is the answer of POST /mint.
type MintResponse struct {
	Token string `json:"token"`
}

// Handler serves the discovery document, the JWKS and POST /mint.
func (i *Issuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		base := i.URL()
		if base == "" {
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			base = scheme + "://" + r.Host
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"issuer":                                base,
			"jwks_uri":                              base + "/.well-known/jwks.json",
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"},
			"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti"},
		})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		b, err := i.JWKS()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("POST /mint", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
		if err != nil || len(body) > 1<<20 {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "body too large or unreadable"})
			return
		}
		d := json.NewDecoder(bytes.NewReader(body))
		d.UseNumber()
		d.DisallowUnknownFields()
		var req MintRequest
		if err := d.Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid JSON: " + err.Error()})
			return
		}
		tok, err := i.Mint(req.Shape, req.Claims, time.Duration(req.TTLSeconds)*time.Second)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, MintResponse{Token: tok})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
