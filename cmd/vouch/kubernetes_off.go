//go:build !kubernetes

package main

import (
	"log/slog"

	"github.com/vouch-project/vouch/server/admission"
	"github.com/vouch-project/vouch/server/reload"
)

// kubernetesSource is not linked into this vouch: Kubernetes' client
// libraries would cost every command's start-up (kubernetes.go).
func kubernetesSource(*serveFlags, *generations, *slog.Logger) (reload.Source, error) {
	return nil, usageErrorf("--kubernetes: this vouch was built without the Kubernetes source; build with -tags kubernetes (the container image is)")
}

// pullSecretsCredentials is not linked into this vouch either.
func pullSecretsCredentials(*serveFlags) (admission.CredentialsFunc, error) {
	return nil, usageErrorf("--kubernetes-pull-secrets: this vouch was built without the Kubernetes source; build with -tags kubernetes (the container image is)")
}
