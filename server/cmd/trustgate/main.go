// Command trustgate is the Trustgate server and its tools: serve, keys, kek, audit, exchange,
// revoke, impact and dev-issuer.
// This file and its siblings only turn flags and environment into calls of the server packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/trustgate/terraform-provider-trustgate/internal/ciclient"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `trustgate — workload-identity trust broker

Usage:
  trustgate serve [--dev] [flags]            run the API server
  trustgate keys create --name NAME --role ROLE
  trustgate keys list
  trustgate keys revoke NAME
  trustgate keys rotate-signing [--compromised]   start the next signing key (now, if compromised)
  trustgate kek rotate --new-kek-file F      re-seal the signing keys under a new key-encryption key
  trustgate kek id [--kek-file F]            print the id of a key-encryption key
  trustgate audit verify [--database DSN | --log FILE] [--jwks URL|FILE]
  trustgate exchange --server URL --connection NAME [--from github|gitlab|circleci|google|auto]
  trustgate revoke --server URL --token-file F | --token-env VAR   give an access token back
  trustgate impact --server URL --connection NAME (--patch FILE | --proposal)   (API key: TRUSTGATE_API_KEY)
  trustgate dev-issuer serve|mint [flags]    local OIDC issuer for demos and tests
  trustgate version

Run "trustgate <command> -h" for the flags of a command.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		// `trustgate exchange`, `trustgate revoke` and `trustgate impact` have already written their
		// reason to stderr.
		var reported *ciclient.ReportedError
		if !errors.As(err, &reported) {
			fmt.Fprintln(os.Stderr, "trustgate:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "serve":
		return serveCmd(ctx, args[1:], stdout, stderr)
	case "keys":
		return keysCmd(ctx, args[1:], stdout, stderr)
	case "kek":
		return kekCmd(ctx, args[1:], stdout, stderr)
	case "audit":
		return auditCmd(ctx, args[1:], stdout, stderr)
	case "exchange":
		return exchangeCmd(ctx, args[1:], stdout, stderr)
	case "revoke":
		return revokeCmd(ctx, args[1:], stdout, stderr)
	case "impact":
		return impactCmd(ctx, args[1:], stdout, stderr)
	case "dev-issuer":
		return devIssuerCmd(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
