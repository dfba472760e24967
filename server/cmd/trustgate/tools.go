package main

import (
	"context"
	"io"
	"os"

	"github.com/trustgate/terraform-provider-trustgate/internal/ciclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
)

func exchangeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return ciclient.RunCLI(ctx, args, os.Getenv, stdout, stderr)
}

func revokeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return ciclient.RunRevokeCLI(ctx, args, os.Getenv, stdout, stderr)
}

func impactCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return ciclient.RunImpactCLI(ctx, args, os.Getenv, os.Stdin, stdout, stderr)
}

func devIssuerCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return devissuer.RunCLI(ctx, args, stdout, stderr)
}
