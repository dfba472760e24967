// Command terraform-provider-trustgate is the Trustgate Terraform provider plugin
// (registry.terraform.io/trustgate/trustgate, protocol 6).
package main

import (
	"context"
	"flag"
	"log"
	"os"

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
