package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// TerraformTimes are the wall times of one configuration's runs, in seconds.
type TerraformTimes struct {
	// Plan is `terraform plan` on an empty state (every resource to create).
	Plan float64 `json:"plan_s"`
	// Apply is `terraform apply -auto-approve` from an empty state (its own plan included).
	Apply float64 `json:"apply_s"`
	// Replan is `terraform plan` right after the apply: every resource is refreshed and the plan
	// must be empty.
	Replan float64 `json:"replan_s"`
	// ReplanEmpty is whether that plan found nothing to change (CONTRACT.md §6).
	ReplanEmpty bool `json:"replan_empty"`
}

// TerraformResult compares Trustgate connections with terraform_data at one resource count.
type TerraformResult struct {
	Count         int            `json:"count"`
	Trustgate     TerraformTimes `json:"trustgate_workload_connection"`
	TerraformData TerraformTimes `json:"terraform_data"`
	// Ratios are Trustgate ÷ terraform_data.
	PlanRatio   float64 `json:"plan_ratio"`
	ApplyRatio  float64 `json:"apply_ratio"`
	ReplanRatio float64 `json:"replan_ratio"`
}

const connectionsTF = `terraform {
  required_providers {
    trustgate = { source = "trustgate/trustgate" }
  }
}

provider "trustgate" {}

resource "trustgate_workload_connection" "c" {
  count       = %d
  name        = "tf-${count.index}"
  description = "benchmark connection ${count.index}"
  token_ttl   = { amount = 30, unit = "minutes" }
  github {
    owner_id   = "65"
    owner      = "octo-org"
    repository = "octo-org/repo-${count.index}"
  }
  condition {
    claim    = "ref"
    operator = "equals"
    value    = "refs/heads/main"
  }
}
`

// The same inputs as data, so that both configurations cost Terraform the same to evaluate.
const terraformDataTF = `resource "terraform_data" "c" {
  count = %d
  input = {
    name        = "tf-${count.index}"
    description = "benchmark connection ${count.index}"
    token_ttl   = { amount = 30, unit = "minutes" }
    github      = { owner_id = "65", owner = "octo-org", repository = "octo-org/repo-${count.index}" }
    condition   = [{ claim = "ref", operator = "equals", value = "refs/heads/main" }]
  }
}
`

// terraformEnv is what every Terraform run gets: no network, a CLI config that points the provider
// at the locally built binary (dev_overrides: no `terraform init`).
func terraformEnv(workDir, providerDir string) ([]string, error) {
	cfg := filepath.Join(workDir, "terraformrc")
	abs, err := filepath.Abs(providerDir)
	if err != nil {
		return nil, err
	}
	rc := fmt.Sprintf(`provider_installation {
  dev_overrides {
    "registry.terraform.io/trustgate/trustgate" = %q
  }
  direct {}
}
`, abs)
	if err := os.WriteFile(cfg, []byte(rc), 0o600); err != nil {
		return nil, err
	}
	return []string{"TF_CLI_CONFIG_FILE=" + cfg, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_INPUT=0"}, nil
}

// terraformRun times plan, apply and the plan after apply of config in a fresh directory.
func terraformRun(ctx context.Context, terraform, dir, config string, env []string) (TerraformTimes, error) {
	var t TerraformTimes
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return t, err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o644); err != nil {
		return t, err
	}
	run := func(args ...string) (float64, int, error) {
		cmd := exec.CommandContext(ctx, terraform, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		logf, err := os.OpenFile(filepath.Join(dir, "terraform.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return 0, 0, err
		}
		defer logf.Close()
		fmt.Fprintf(logf, "\n$ terraform %s\n", strings.Join(args, " "))
		cmd.Stdout, cmd.Stderr = logf, logf
		start := time.Now()
		err = cmd.Run()
		secs := round3(time.Since(start).Seconds())
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return secs, ee.ExitCode(), nil
		}
		return secs, 0, err
	}
	fail := func(step string, code int) error {
		return fmt.Errorf("terraform %s in %s exited %d; see %s:\n%s", step, dir, code,
			filepath.Join(dir, "terraform.log"), tail(filepath.Join(dir, "terraform.log")))
	}
	secs, code, err := run("plan", "-no-color", "-input=false", "-lock=false")
	if err != nil || code != 0 {
		return t, errors.Join(err, fail("plan", code))
	}
	t.Plan = secs
	if secs, code, err = run("apply", "-no-color", "-input=false", "-lock=false", "-auto-approve"); err != nil || code != 0 {
		return t, errors.Join(err, fail("apply", code))
	}
	t.Apply = secs
	if secs, code, err = run("plan", "-no-color", "-input=false", "-lock=false", "-detailed-exitcode"); err != nil || code == 1 {
		return t, errors.Join(err, fail("plan after apply", code))
	}
	t.Replan, t.ReplanEmpty = secs, code == 0
	return t, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round3(a / b)
}
