//go:build !kubernetes

package main

import (
	"context"
	"log/slog"

	"github.com/vouch-project/vouch"

	"github.com/vouch-project/vouch/audit"
	"github.com/vouch-project/vouch/server"
	"github.com/vouch-project/vouch/server/preverify"
)

// clusterWorkloads is not linked into this vouch: Kubernetes' client
// libraries would cost every command's start-up (kubernetes.go).
func clusterWorkloads(context.Context, string, []string) ([]audit.Workload, error) {
	return nil, usageErrorf("--kubernetes: this vouch was built without the Kubernetes source; build with -tags kubernetes (the container image is), or audit manifests with -f")
}

// startAudit is not linked into this vouch either; --audit-interval needs
// --kubernetes, which says so first.
func startAudit(context.Context, *serveFlags, func(context.Context, string, string) (*vouch.Report, error), *server.Metrics, *slog.Logger) (func(), func(), error) {
	return nil, nil, usageErrorf("--audit-interval: this vouch was built without the Kubernetes source; build with -tags kubernetes")
}

// startWorkloadWatch is not linked into this vouch either; --watch-workloads
// needs --kubernetes, which says so first.
func startWorkloadWatch(context.Context, *serveFlags, *preverify.Queue, *slog.Logger) (func(), error) {
	return nil, usageErrorf("--watch-workloads: this vouch was built without the Kubernetes source; build with -tags kubernetes")
}
