// Package e2e runs `vouch serve` behind a real Kubernetes control plane:
// etcd, kube-apiserver, kubectl and the OPA Gatekeeper manager, built by
// hack/cluster.sh into the testbed's bin folder, all on 127.0.0.1. Its
// tests admit a notation-signed image and deny an unsigned one, through
// Gatekeeper's external data and through vouch's own admission webhooks.
// It holds tests only; see docs/serving.md, "End-to-end test".
package e2e
