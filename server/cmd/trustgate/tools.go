package main

import (
	"context"
	"io"
	"os"

	"github.com/trustgate/terraform-provider-trustgate/server/ciexchange"
	"github.com/trustgate/terraform-provider-trustgate/server/devissuer"
)

func exchangeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return ciexchange.RunCLI(ctx, args, os.Getenv, stdout, stderr)
}

func devIssuerCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return devissuer.RunCLI(ctx, args, stdout, stderr)
}
