package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/principal"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
)

// keysCmd runs `trustgate keys create|list|revoke|rotate-signing` on the database, which a server may be
// serving at the same time.
func keysCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: trustgate keys create --name NAME --role ROLE | keys list | keys revoke NAME | keys rotate-signing [--compromised]")
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "create":
		return keysCreate(ctx, args, stdout, stderr)
	case "list":
		return keysList(ctx, args, stdout, stderr)
	case "revoke":
		return keysRevoke(ctx, args, stdout, stderr)
	case "rotate-signing":
		return keysRotateSigning(ctx, args, stdout, stderr)
	}
	return fmt.Errorf("unknown keys command %q: use create, list, revoke or rotate-signing", sub)
}

// keysFlags are the flags of every keys subcommand: --database, and --name and --role, which
// create needs and revoke takes in place of its argument.
type keysFlags struct {
	database, name, role string
	args                 []string // what follows the flags
}

func parseKeysFlags(sub string, args []string, stderr io.Writer) (keysFlags, error) {
	var f keysFlags
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.database, "database", defaultDatabase, "sqlite://PATH or postgres://… (TRUSTGATE_DATABASE)")
	fs.StringVar(&f.name, "name", "", "principal name (create)")
	fs.StringVar(&f.role, "role", "", "role: "+strings.Join(api.Roles, ", ")+" (create)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if err := envDefaults(fs, map[string]string{"database": "TRUSTGATE_DATABASE"}); err != nil {
		return f, err
	}
	f.args = fs.Args()
	return f, nil
}

// withPrincipals opens the database and runs fn on its key use cases.
func withPrincipals(ctx context.Context, database string, fn func(*principal.Service) error) error {
	st, err := store.Open(ctx, database)
	if err != nil {
		return fmt.Errorf("opening the database %s: %w", redact(database), err)
	}
	defer st.Close()
	return fn(&principal.Service{Store: st})
}

// keysCreate prints the new key alone, so that `KEY=$(trustgate keys create …)` works.
func keysCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseKeysFlags("create", args, stderr)
	if err != nil {
		return err
	}
	if f.name == "" || f.role == "" {
		return errors.New("keys create needs --name and --role (" + strings.Join(api.Roles, ", ") + ")")
	}
	return withPrincipals(ctx, f.database, func(ps *principal.Service) error {
		key, err := ps.Create(ctx, f.name, f.role)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, key)
		return nil
	})
}

// keysList prints every principal with its role and times; never a key (only hashes are stored).
func keysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseKeysFlags("list", args, stderr)
	if err != nil {
		return err
	}
	return withPrincipals(ctx, f.database, func(ps *principal.Service) error {
		list, err := ps.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tCREATED\tREVOKED")
		for _, p := range list {
			revoked := "-"
			if p.RevokedAt != nil {
				revoked = p.RevokedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Role, p.CreatedAt.UTC().Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	})
}

// keysRevoke revokes the key named by its argument (or --name) for good.
func keysRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseKeysFlags("revoke", args, stderr)
	if err != nil {
		return err
	}
	target := f.name
	if target == "" && len(f.args) == 1 {
		target = f.args[0]
	}
	if target == "" {
		return errors.New("usage: trustgate keys revoke NAME")
	}
	return withPrincipals(ctx, f.database, func(ps *principal.Service) error {
		if err := ps.Revoke(ctx, target); err != nil {
			if errors.Is(err, principal.ErrNoSuchPrincipal) {
				return fmt.Errorf("no active key named %q: see `trustgate keys list`", target)
			}
			return err
		}
		fmt.Fprintf(stdout, "revoked %s\n", target)
		return nil
	})
}

// redact drops a password from a database URL before it is shown.
func redact(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.LastIndex(dsn, "@"); at > i {
			userinfo := dsn[i+3 : at]
			if c := strings.Index(userinfo, ":"); c >= 0 {
				return dsn[:i+3] + userinfo[:c] + ":***" + dsn[at:]
			}
		}
	}
	return dsn
}
