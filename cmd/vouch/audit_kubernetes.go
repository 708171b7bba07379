//go:build kubernetes

package main

import (
	"context"
	"log/slog"

	"github.com/vouch-project/vouch"

	"github.com/vouch-project/vouch/audit"
	"github.com/vouch-project/vouch/audit/cluster"
	"github.com/vouch-project/vouch/server"
	"github.com/vouch-project/vouch/server/kube"
	"github.com/vouch-project/vouch/server/preverify"
)

// clusterWorkloads reads the workloads of the running Pods of namespaces
// (all when none) in the cluster kubeconfig names.
func clusterWorkloads(ctx context.Context, kubeconfig string, namespaces []string) ([]audit.Workload, error) {
	cfg, err := cluster.RESTConfig(kubeconfig)
	if err != nil {
		return nil, &exitError{code: exitUndecided, err: err}
	}
	c, err := kube.NewClient(cfg)
	if err != nil {
		return nil, &exitError{code: exitUndecided, err: err}
	}
	w, err := cluster.Workloads(ctx, cluster.Options{Client: c, Namespaces: namespaces})
	if err != nil {
		return nil, &exitError{code: exitUndecided, err: err}
	}
	return w, nil
}

// startAudit starts vouch serve's audit of the running Pods (--audit-interval),
// verifying with verify (the engine); trigger asks for an audit now, wait
// waits for the audit to stop once ctx ends.
func startAudit(ctx context.Context, sf *serveFlags, verify func(context.Context, string, string) (*vouch.Report, error), metrics *server.Metrics, logger *slog.Logger) (trigger func(), wait func(), err error) {
	cfg, err := kube.RESTConfig(sf.kubeconfig)
	if err != nil {
		return nil, nil, &exitError{code: exitUndecided, err: err}
	}
	c, err := kube.NewClient(cfg)
	if err != nil {
		return nil, nil, &exitError{code: exitUndecided, err: err}
	}
	credentials, _, err := sf.podCredentials()
	if err != nil {
		return nil, nil, err
	}
	a, err := kube.NewAuditor(kube.AuditorOptions{Client: c, Verify: verify, Credentials: credentials, Interval: sf.auditInterval, Rate: sf.auditRate, OnAudit: metrics.Audit, Logger: logger.With("component", "audit")})
	if err != nil {
		return nil, nil, &exitError{code: exitUndecided, err: err}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Start(ctx)
	}()
	return a.Trigger, func() { <-done }, nil
}

// startWorkloadWatch starts watching the cluster's workloads
// (--watch-workloads), queueing the images of new or changed pod
// templates on queue; wait waits for it to stop once ctx ends.
func startWorkloadWatch(ctx context.Context, sf *serveFlags, queue *preverify.Queue, logger *slog.Logger) (wait func(), err error) {
	cfg, err := kube.RESTConfig(sf.kubeconfig)
	if err != nil {
		return nil, &exitError{code: exitUndecided, err: err}
	}
	c, err := kube.NewClient(cfg)
	if err != nil {
		return nil, &exitError{code: exitUndecided, err: err}
	}
	w, err := kube.NewWorkloadWatcher(kube.WorkloadWatcherOptions{
		Client: c,
		Enqueue: func(namespace, image string) {
			queue.Enqueue(preverify.Job{Namespace: namespace, Image: image, Source: "workload", UseCache: true})
		},
		Logger: logger.With("component", "preverify"),
	})
	if err != nil {
		return nil, &exitError{code: exitUndecided, err: err}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Start(ctx)
	}()
	return func() { <-done }, nil
}
