// Command kube-apiserver is the upstream Kubernetes API server, built from the Go module proxy
// at the version pinned in go.mod, for the project's local test bed.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
