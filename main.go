// Command terraform-provider-trustgate is the Trustgate Terraform provider plugin
// (registry.terraform.io/trustgate/trustgate, protocol 6).
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"runtime/debug"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/trustgate/terraform-provider-trustgate/provider"
)

// version is set at build time: go build -ldflags "-X main.version=1.2.3".
var version = "dev"

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "run the provider with support for debuggers like delve")
	flag.Parse()
	quietSDKUnlessAsked()
	relaxGCUnlessAsked()

	err := providerserver.Serve(context.Background(), provider.New(version), providerserver.ServeOpts{
		Address:         provider.Address,
		Debug:           debug,
		ProtocolVersion: 6,
	})
	if err != nil {
		log.Fatal(err.Error())
	}
}

// quietSDKUnlessAsked turns terraform-plugin-framework's own trace logging off when nobody asked
// for logs. Terraform discards those lines unless TF_LOG or TF_LOG_PROVIDER is set, yet producing
// and parsing them costs about a third of the provider's CPU in a 500-resource plan (BENCHMARKS.md).
// Any TF_LOG, TF_LOG_PROVIDER or TF_LOG_SDK* setting keeps the framework's default behaviour.
func quietSDKUnlessAsked() {
	for _, v := range []string{"TF_LOG", "TF_LOG_PROVIDER", "TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_SDK_PROTO"} {
		if os.Getenv(v) != "" {
			return
		}
	}
	for _, v := range []string{"TF_LOG_SDK", "TF_LOG_SDK_FRAMEWORK", "TF_LOG_SDK_PROTO"} {
		_ = os.Setenv(v, "off")
	}
}

// gcPercent is the garbage collector's target while serving Terraform, instead of Go's default 100.
// A plan allocates about 1.6 MB per resource in terraform-plugin-framework (schema walks, value
// transforms) while the live heap stays around 10–20 MB, so with the default the collector runs
// about 100 times in a 500-resource plan and takes a quarter to a third of the provider's CPU. At
// 400 that share drops by about two thirds (provider CPU 2.4 → 1.6 s, peak RSS 64 → ~135 MB for 500
// resources; BENCHMARKS.md). A plugin process lives for one Terraform command.
const gcPercent = 400

// relaxGCUnlessAsked sets gcPercent unless GOGC is set (Terraform passes its environment to the
// plugin, so GOGC=100 restores Go's default and GOGC=off turns the collector off).
func relaxGCUnlessAsked() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}
