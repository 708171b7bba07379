//go:build !kubernetes

package main

import (
	"context"

	"github.com/vouch-project/vouch/audit"
)

// clusterWorkloads is not linked into this vouch: Kubernetes' client
// libraries would cost every command's start-up (kubernetes.go).
func clusterWorkloads(context.Context, string, []string) ([]audit.Workload, error) {
	return nil, usageErrorf("--kubernetes: this vouch was built without the Kubernetes source; build with -tags kubernetes (the container image is), or audit manifests with -f")
}
