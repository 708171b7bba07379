//go:build kubernetes

package main

import (
	"context"

	"github.com/vouch-project/vouch/audit"
	"github.com/vouch-project/vouch/audit/cluster"
	"github.com/vouch-project/vouch/server/kube"
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
