package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/server/app"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
)

// The signing-key commands: `trustgate keys rotate-signing` and `trustgate kek rotate|id`. Like
// `keys create`, they work on the database while servers run on it; the servers pick the change
// up at their next poll (within a second).

// readKEK reads a key-encryption key from the file a flag names, else from an environment
// variable; nil when neither is set.
func readKEK(flagName, file, variable string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading --%s: %w", flagName, err)
		}
		kek, err := signing.ParseKEK(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("--%s %s: %w", flagName, file, err)
		}
		return kek, nil
	}
	if v := os.Getenv(variable); v != "" {
		kek, err := signing.ParseKEK(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", variable, err)
		}
		return kek, nil
	}
	return nil, nil
}

// signingFlags are the flags of the commands that open signing keys.
type signingFlags struct {
	fs                    *flag.FlagSet
	database, actor       string
	kekFile, previousFile string
}

func newSigningFlags(name string, stderr io.Writer) *signingFlags {
	f := &signingFlags{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.StringVar(&f.database, "database", defaultDatabase, "sqlite://PATH or postgres://… (TRUSTGATE_DATABASE)")
	f.fs.StringVar(&f.kekFile, "kek-file", "", "file holding the base64 key-encryption key (else TRUSTGATE_KEK)")
	f.fs.StringVar(&f.previousFile, "kek-previous-file", "", "file holding the previous key-encryption key, during a rolling restart (else TRUSTGATE_KEK_PREVIOUS)")
	f.fs.StringVar(&f.actor, "actor", defaultActor(), "who is doing this, for the audit log")
	return f
}

func (f *signingFlags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: every input is a flag (see -h)", f.fs.Arg(0))
	}
	return envDefaults(f.fs, map[string]string{"database": "TRUSTGATE_DATABASE"})
}

// keks reads the KEK (required) and the previous one (optional).
func (f *signingFlags) keks() (signing.KEKs, error) {
	cur, err := readKEK("kek-file", f.kekFile, "TRUSTGATE_KEK")
	if err != nil {
		return signing.KEKs{}, err
	}
	if cur == nil {
		return signing.KEKs{}, errors.New("no key-encryption key: set TRUSTGATE_KEK or --kek-file to the KEK the servers run with (for a --dev database: --kek-file trustgate.kek beside it)")
	}
	prev, err := readKEK("kek-previous-file", f.previousFile, "TRUSTGATE_KEK_PREVIOUS")
	if err != nil {
		return signing.KEKs{}, err
	}
	return signing.KEKs{Current: cur, Previous: prev}, nil
}

// defaultActor names the person running a command in the audit log: cli:USER@HOST.
func defaultActor() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	return "cli:" + name + "@" + host
}

// withKeyStore opens the database and runs fn on its signing keys.
func withKeyStore(ctx context.Context, database string, fn func(signing.KeyStore) error) error {
	st, err := store.Open(ctx, database)
	if err != nil {
		return fmt.Errorf("opening the database %s: %w", redact(database), err)
	}
	defer st.Close()
	ks, closeKS := app.KeyStore(st)
	defer closeKS() // before st.Close: commits the chain's queued events
	return fn(ks)
}

// keysRotateSigning is `trustgate keys rotate-signing [--compromised]`.
func keysRotateSigning(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newSigningFlags("keys rotate-signing", stderr)
	compromised := f.fs.Bool("compromised", false, "withdraw every published key at once (their tokens stop verifying) and sign with a new key immediately")
	if err := f.parse(args); err != nil {
		return err
	}
	keks, err := f.keks()
	if err != nil {
		return err
	}
	return withKeyStore(ctx, f.database, func(ks signing.KeyStore) error {
		r, err := signing.Rotate(ctx, ks, keks, *compromised, f.actor, time.Now())
		if err != nil {
			return err
		}
		if *compromised {
			fmt.Fprintf(stdout, "withdrew %d key(s): %s; every token they signed stops verifying within a second\n",
				len(r.Withdrawn), strings.Join(r.Withdrawn, ", "))
			fmt.Fprintf(stdout, "key %s signs from now\n", r.KID)
			return nil
		}
		fmt.Fprintf(stdout, "key %s is published now and signs from %s (key %s signs until then)\n",
			r.KID, r.SignsFrom.UTC().Format(time.RFC3339), r.PreviousKID)
		return nil
	})
}

// kekCmd runs `trustgate kek rotate|id`.
func kekCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: trustgate kek rotate --new-kek-file F | kek id [--kek-file F]")
	}
	switch args[0] {
	case "rotate":
		return kekRotate(ctx, args[1:], stdout, stderr)
	case "id":
		return kekID(args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown kek command %q: use rotate or id", args[0])
}

// kekRotate re-seals every signing key under the new KEK in one transaction.
func kekRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newSigningFlags("kek rotate", stderr)
	newFile := f.fs.String("new-kek-file", "", "file holding the new base64 key-encryption key (else TRUSTGATE_NEW_KEK)")
	if err := f.parse(args); err != nil {
		return err
	}
	keks, err := f.keks()
	if err != nil {
		return err
	}
	newKEK, err := readKEK("new-kek-file", *newFile, "TRUSTGATE_NEW_KEK")
	if err != nil {
		return err
	}
	if newKEK == nil {
		return errors.New("no new key-encryption key: pass --new-kek-file F or set TRUSTGATE_NEW_KEK (make one with `openssl rand -base64 32`)")
	}
	return withKeyStore(ctx, f.database, func(ks signing.KeyStore) error {
		kids, err := signing.RotateKEK(ctx, ks, keks, newKEK, f.actor)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "re-sealed %d signing key(s) under %s (was %s)\n", len(kids), signing.KEKID(newKEK), signing.KEKID(keks.Current))
		fmt.Fprintf(stdout, "next: restart each server with TRUSTGATE_KEK set to the new KEK and TRUSTGATE_KEK_PREVIOUS to the old one; once all run the new one, drop TRUSTGATE_KEK_PREVIOUS\n")
		return nil
	})
}

// kekID prints the id of a KEK, to compare with the one a refusing server names.
func kekID(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kek id", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("kek-file", "", "file holding the base64 key-encryption key (else TRUSTGATE_KEK)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	kek, err := readKEK("kek-file", *file, "TRUSTGATE_KEK")
	if err != nil {
		return err
	}
	if kek == nil {
		return errors.New("no key-encryption key: pass --kek-file F or set TRUSTGATE_KEK")
	}
	fmt.Fprintln(stdout, signing.KEKID(kek))
	return nil
}
