//go:build !kubernetes

package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestKubernetesNotLinked: the default vouch links no Kubernetes package
// beyond klog (which oras-go's dependencies bring), so that the CLI's
// start-up does not pay for client-go's package initialisation; its
// --kubernetes (serve's and audit's) says how to get the source.
func TestKubernetesNotLinked(t *testing.T) {
	code, _, stderr := vouchRun(t, "serve", "--kubernetes", "--tls-cert-file", "x", "--tls-key-file", "y")
	if code != exitUsage || !strings.Contains(stderr, "built without the Kubernetes source; build with -tags kubernetes") {
		t.Errorf("serve --kubernetes: exit %d: %s", code, stderr)
	}
	code, _, stderr = vouchRun(t, "audit", "--kubernetes")
	if code != exitUsage || !strings.Contains(stderr, "built without the Kubernetes source; build with -tags kubernetes") || !strings.Contains(stderr, "-f") {
		t.Errorf("audit --kubernetes: exit %d: %s", code, stderr)
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skip("go list:", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "k8s.io/") && !strings.HasPrefix(pkg, "k8s.io/klog/") || strings.HasPrefix(pkg, "sigs.k8s.io/") {
			t.Errorf("vouch links %s: Kubernetes code belongs behind the kubernetes build tag (cmd/vouch/kubernetes.go)", pkg)
		}
	}
}
