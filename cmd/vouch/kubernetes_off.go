//go:build !kubernetes

package main

import (
	"log/slog"

	"github.com/vouch-project/vouch/server/reload"
)

// kubernetesSource is not linked into this vouch: Kubernetes' client
// libraries would cost every command's start-up (kubernetes.go).
func kubernetesSource(*serveFlags, *generations, *slog.Logger) (reload.Source, error) {
	return nil, usageErrorf("--kubernetes: this vouch was built without the Kubernetes source; build with -tags kubernetes (the container image is)")
}
