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
	"github.com/trustgate/terraform-provider-trustgate/server/app"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
)

func keysCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: trustgate keys create --name NAME --role ROLE | keys list | keys revoke NAME")
	}
	sub := args[0]
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	database := fs.String("database", defaultDatabase, "sqlite://PATH or postgres://… (TRUSTGATE_DATABASE)")
	name := fs.String("name", "", "principal name (create)")
	role := fs.String("role", "", "role: "+strings.Join(api.Roles, ", ")+" (create)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := envDefaults(fs, map[string]string{"database": "TRUSTGATE_DATABASE"}); err != nil {
		return err
	}
	open := func() (*store.Store, error) {
		st, err := store.Open(ctx, *database)
		if err != nil {
			return nil, fmt.Errorf("opening the database %s: %w", redact(*database), err)
		}
		return st, nil
	}
	switch sub {
	case "create":
		if *name == "" || *role == "" {
			return errors.New("keys create needs --name and --role (" + strings.Join(api.Roles, ", ") + ")")
		}
		st, err := open()
		if err != nil {
			return err
		}
		defer st.Close()
		key, err := app.CreateKeyIn(ctx, st, *name, *role)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, key) // the key alone, so `KEY=$(trustgate keys create …)` works
		return nil
	case "list":
		st, err := open()
		if err != nil {
			return err
		}
		defer st.Close()
		ps, err := st.ListPrincipals(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tCREATED\tREVOKED")
		for _, p := range ps {
			revoked := "-"
			if p.RevokedAt != nil {
				revoked = p.RevokedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Role, p.CreatedAt.UTC().Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	case "revoke":
		target := *name
		if target == "" && fs.NArg() == 1 {
			target = fs.Arg(0)
		}
		if target == "" {
			return errors.New("usage: trustgate keys revoke NAME")
		}
		st, err := open()
		if err != nil {
			return err
		}
		defer st.Close()
		if err := st.RevokePrincipal(ctx, target); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no active key named %q: see `trustgate keys list`", target)
			}
			return err
		}
		fmt.Fprintf(stdout, "revoked %s\n", target)
		return nil
	}
	return fmt.Errorf("unknown keys command %q: use create, list or revoke", sub)
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
