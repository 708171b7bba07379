package v1alpha1_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/vouch-project/vouch/config"
	"github.com/vouch-project/vouch/internal/testbed"
)

// TestAPIServer applies the CRDs to a real kube-apiserver and etcd (the
// testbed's, started by controller-runtime's envtest), creates the
// examples, and checks that the API server's own validation refuses
// invalid resources with a message naming the field; vouch's decoder
// (config.ParseResources) refuses each of them too.
func TestAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver")
	}
	bin := testbed.BinDir()
	for _, name := range []string{"kube-apiserver", "etcd", "kubectl"} {
		testbed.Bin(t, name)
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: bin,
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "deploy", "crds")},
		ErrorIfCRDPathMissing: true,
	}
	if _, err := env.Start(); err != nil {
		t.Fatalf("envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("envtest stop: %v", err)
		}
	})
	admin, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kcPath := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kcPath, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	kubectl := func(stdin string, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "kubectl"), append([]string{"--kubeconfig", kcPath}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, err := kubectl(stdin, args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	must("", "create", "namespace", "team-a")
	for _, name := range []string{"cluster.yaml", "tenant.yaml"} {
		must("", "apply", "-f", filepath.Join("..", "..", "examples", "kubernetes", name))
	}
	// Short names, printer columns, and the status subresource.
	must("", "patch", "cvc", "vouch", "--subresource=status", "--type=merge", "-p",
		`{"status":{"observedGeneration":1,"conditions":[{"type":"Ready","status":"False","reason":"InvalidReference","message":"spec.verifiers[1].cosign.keys.refs[0]: secret vouch/cosign-pub has no key cosign.pub","lastTransitionTime":"2026-01-01T00:00:00Z"}]}}`)
	out := must("", "get", "clustervouchconfigs")
	if !strings.Contains(out, "READY") || !strings.Contains(out, "REASON") || !strings.Contains(out, "AGE") || !strings.Contains(out, "InvalidReference") {
		t.Errorf("kubectl get clustervouchconfigs:\n%s", out)
	}
	if out := must("", "get", "vc", "-n", "team-a"); !strings.Contains(out, "team-a") {
		t.Errorf("kubectl get vc -n team-a:\n%s", out)
	}
	// A status update does not go through the spec.
	if gen := must("", "get", "cvc", "vouch", "-o", "jsonpath={.metadata.generation}"); gen != "1" {
		t.Errorf("generation after a status patch = %s, want 1", gen)
	}

	const cluster = "apiVersion: config.vouch.dev/v1alpha1\nkind: ClusterVouchConfig\nmetadata: {name: bad}\nspec:\n"
	const tenant = "apiVersion: config.vouch.dev/v1alpha1\nkind: VouchConfig\nmetadata: {name: bad, namespace: team-a}\nspec:\n"
	for _, tc := range []struct {
		name, doc string
		// apiserver is what the API server's message says; vouch what
		// config.ParseResources says.
		apiserver, vouch string
	}{
		{"an unknown verifier type", cluster + "  verifiers: [{name: g, type: gpg}]\n",
			`spec.verifiers[0].type: Unsupported value: "gpg"`, `spec.verifiers[0].type: "gpg" is not a verifier type`},
		{"a tenant setting registries", tenant + "  registries: {plainHTTP: true}\n",
			`unknown field "spec.registries"`, "spec.registries: unknown field"},
		{"a tenant setting limits", tenant + "  limits: {maxNodes: 1}\n",
			`unknown field "spec.limits"`, "spec.limits: unknown field"},
		{"a scope without requirements", cluster + "  policy: {scopes: [{name: s, repositories: ['*']}]}\n",
			"spec.policy.scopes[0]: Invalid value: a scope needs require, rego or cel", "spec.policy.scopes[0].require: at least one requirement"},
		{"a scope with rego and cel", cluster + "  policy: {scopes: [{name: s, repositories: ['*'], rego: {inline: x}, cel: {validations: [{expression: 'true'}]}}]}\n",
			"set rego or cel, not both", "spec.policy.scopes[0]: set rego or cel, not both"},
		{"a reference without a key", cluster + "  trustStores: [{name: 'ca:x', refs: [{kind: Secret, name: a}]}]\n",
			"spec.trustStores[0].refs[0].key: Required value", "spec.trustStores[0].refs[0].key: required"},
		{"a reference to a Pod", cluster + "  trustStores: [{name: 'ca:x', refs: [{kind: Pod, name: a, key: b}]}]\n",
			`spec.trustStores[0].refs[0].kind: Unsupported value: "Pod"`, `spec.trustStores[0].refs[0].kind: "Pod" is not Secret or ConfigMap`},
		{"a bad mode", cluster + "  policy: {scopes: [{name: s, repositories: ['*'], mode: lax, require: [{artifactType: x}]}]}\n",
			`spec.policy.scopes[0].mode: Unsupported value: "lax"`, `spec.policy.scopes[0].mode: "lax" is not enforce, warn or audit`},
		{"a bad match", cluster + "  policy: {scopes: [{name: s, repositories: ['*'], require: [{artifactType: x, match: most}]}]}\n",
			`spec.policy.scopes[0].require[0].match: Unsupported value: "most"`, `match`},
		{"a trust store name", cluster + "  trustStores: [{name: 'x', pem: 'x'}]\n",
			"spec.trustStores[0].name: Invalid value", `spec.trustStores[0].name: "x" is not TYPE:NAME`},
		{"no spec", "apiVersion: config.vouch.dev/v1alpha1\nkind: ClusterVouchConfig\nmetadata: {name: bad}\n",
			"spec: Required value", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := kubectl(tc.doc, "apply", "-f", "-")
			t.Logf("kubectl apply: %s", strings.TrimSpace(out))
			if err == nil || !strings.Contains(out, tc.apiserver) {
				t.Errorf("kubectl apply: %v\n%s\nwant a refusal containing %q", err, out, tc.apiserver)
			}
			if tc.vouch == "" {
				return
			}
			if _, err := config.ParseResources([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.vouch) {
				t.Errorf("config.ParseResources: %v\nwant an error containing %q", err, tc.vouch)
			}
		})
	}
}
