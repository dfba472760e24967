package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/audit"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
)

// auditCmd runs `trustgate audit verify`: it checks the audit log's hash chains and checkpoint
// signatures (CONTRACT.md §3, AUDIT.md) in the database (read-only, beside running servers) or in
// a streamed file.
func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("usage: trustgate audit verify [--database DSN | --log FILE] [--jwks URL|FILE]")
	}
	var database, logFile string
	var jwksSources listFlag
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&database, "database", defaultDatabase, "sqlite://PATH or postgres://… to verify (TRUSTGATE_DATABASE)")
	fs.StringVar(&logFile, "log", "", "verify this streamed audit log file (from --audit-log) instead of the database")
	fs.Var(&jwksSources, "jwks", "public JWK set to check checkpoint signatures with: an https URL (the server's /.well-known/jwks.json) or a file; repeatable (keep old sets for retired keys). Default with the database: its public signing keys")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := envDefaults(fs, map[string]string{"database": "TRUSTGATE_DATABASE"}); err != nil {
		return err
	}
	var sets [][]byte
	for _, src := range jwksSources {
		b, err := readJWKS(ctx, src)
		if err != nil {
			return err
		}
		sets = append(sets, b)
	}
	if logFile != "" && len(sets) == 0 {
		return errors.New("audit verify --log needs --jwks: the server's public keys (its /.well-known/jwks.json URL or a saved copy) check the checkpoints' signatures")
	}
	v := &audit.Verifier{CheckSignature: checkWith(&sets)}
	var err error
	if logFile != "" {
		err = verifyLog(logFile, v)
	} else {
		err = verifyDatabase(ctx, database, v, &sets)
	}
	if err == nil {
		err = v.Finish()
	}
	v.Report(stdout)
	if err != nil {
		var b *audit.Break
		if errors.As(err, &b) {
			return fmt.Errorf("audit log NOT intact: %w", err)
		}
		return err
	}
	fmt.Fprintln(stdout, "audit log intact: every hash, link and checkpoint signature verified")
	return nil
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// checkWith verifies a checkpoint's detached JWS against each key set in turn.
func checkWith(sets *[][]byte) func(jws string, payload []byte) (string, error) {
	return func(jws string, payload []byte) (string, error) {
		last := errors.New("no public keys")
		for _, set := range *sets {
			kid, err := signing.VerifyDetached(set, audit.CheckpointType, jws, payload)
			if err == nil {
				return kid, nil
			}
			last = err
		}
		return "", last
	}
}

// readJWKS reads a JWK set from an http(s) URL or a file.
func readJWKS(ctx context.Context, src string) ([]byte, error) {
	if strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://") {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, fmt.Errorf("--jwks %s: %w", src, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("--jwks %s: %w", src, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("--jwks %s: HTTP %d", src, resp.StatusCode)
		}
		return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("--jwks: %w", err)
	}
	return b, nil
}

// verifyLog feeds every line of a streamed file to v, hashing each line's own bytes.
func verifyLog(path string, v *audit.Verifier) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	for line := 1; ; line++ {
		b, err := r.ReadBytes('\n')
		if len(b) > 0 && b[len(b)-1] != '\n' {
			return fmt.Errorf("%s line %d: the last line is incomplete (a server still writing it, or a crash: the server cuts it off and writes it again at its next start)", path, line)
		}
		if b = bytes.TrimSpace(b); len(b) > 0 {
			var ev api.AuditEvent
			if jerr := json.Unmarshal(b, &ev); jerr != nil {
				return fmt.Errorf("%s line %d is not an audit event: %v", path, line, jerr)
			}
			if verr := v.Add(&ev, b); verr != nil {
				return verr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// verifyDatabase walks the database's audit log read-only. Without --jwks it checks signatures
// with the public keys in the database's signing-key table.
func verifyDatabase(ctx context.Context, dsn string, v *audit.Verifier, sets *[][]byte) error {
	st, err := store.Open(ctx, dsn, store.ReadOnly())
	if err != nil {
		return fmt.Errorf("opening the database: %w", err)
	}
	defer st.Close()
	if len(*sets) == 0 {
		keys, err := st.SigningKeys(ctx)
		if err != nil {
			return err
		}
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		for _, k := range keys {
			set.Keys = append(set.Keys, json.RawMessage(k.PublicJWK))
		}
		b, err := json.Marshal(set)
		if err != nil {
			return err
		}
		*sets = append(*sets, b)
	}
	return st.WalkAudit(ctx, 5000, func(page []api.AuditEvent) error {
		for i := range page {
			if err := v.Add(&page[i], nil); err != nil {
				return err
			}
		}
		return nil
	})
}
