//go:build kubernetes

package main

// The Kubernetes source links client-go and controller-runtime's client,
// whose package initialisation costs every command about 13 ms of
// start-up; only a vouch built with -tags kubernetes (the container image)
// has it. See docs/kubernetes.md.

import (
	"context"
	"log/slog"

	"github.com/vouch-project/vouch/server/admission"
	"github.com/vouch-project/vouch/server/kube"
	"github.com/vouch-project/vouch/server/reload"
)

// kubernetesSource returns the Source of the ClusterVouchConfig that the
// flags name and of the tenants' VouchConfigs, whose generations gens
// builds.
func kubernetesSource(sf *serveFlags, gens *generations, logger *slog.Logger) (reload.Source, error) {
	ns := sf.kubeNamespace
	if ns == "" {
		ns = kube.DefaultNamespace()
	}
	if ns == "" {
		return nil, usageErrorf("--kubernetes-namespace: vouch does not run in a pod and $POD_NAMESPACE is empty; name vouch's namespace, where references without a namespace are read")
	}
	cfg, err := kube.RESTConfig(sf.kubeconfig)
	if err != nil {
		return nil, &exitError{code: exitUndecided, err: err}
	}
	c, err := kube.NewClient(cfg)
	if err != nil {
		return nil, &exitError{code: exitUndecided, err: err}
	}
	src, err := kube.New(kube.Options{
		Client:    c,
		Name:      sf.kubeConfigName,
		Namespace: ns,
		Interval:  sf.reloadInterval,
		Build: func(_ context.Context, s *kube.Snapshot) (*reload.Generation, error) {
			// s.Composition is the cluster's spec composed with the
			// tenants' VouchConfigs (a refused one fails closed in its
			// namespace).
			return gens.buildComposition(s.Spec, s.Composition, s.Resolver, s.Fingerprint)
		},
		Logger: logger,
	})
	if err != nil {
		return nil, &exitError{code: exitUndecided, err: err}
	}
	return src, nil
}

// pullSecretsCredentials returns the admission webhook's credentials of
// each pod's image pull secrets (--kubernetes-pull-secrets).
func pullSecretsCredentials(sf *serveFlags) (admission.CredentialsFunc, error) {
	cfg, err := kube.RESTConfig(sf.kubeconfig)
	if err != nil {
		return nil, &exitError{code: exitUndecided, err: err}
	}
	c, err := kube.NewClient(cfg)
	if err != nil {
		return nil, &exitError{code: exitUndecided, err: err}
	}
	ps, err := kube.NewPullSecrets(kube.PullSecretsOptions{Client: c})
	if err != nil {
		return nil, &exitError{code: exitUndecided, err: err}
	}
	return ps.Credentials, nil
}
