//go:build linux

package e2e

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouch-project/vouch/internal/testbed"
)

// clusterVouchConfig is the ClusterVouchConfig the gatekeeper-crd subtest
// serves: Notary Project signatures, verified with the certificates of key
// ca.crt of the Secret notation-ca under the trust policy of the ConfigMap
// notation-trust-policy, both in vouch's namespace and both named in
// deploy/rbac/role.yaml.
const clusterVouchConfig = `apiVersion: config.vouch.dev/v1alpha1
kind: ClusterVouchConfig
metadata:
  name: vouch
spec:
  trustStores:
    - name: ca:e2e
      refs: [{kind: Secret, name: notation-ca, key: ca.crt}]
  verifiers:
    - name: notation
      type: notation
      notation:
        trustPolicyRef: {kind: ConfigMap, name: notation-trust-policy, key: trustpolicy.json}
`

const trustPolicy = `{"version": "1.0", "trustPolicies": [{"name": "all", "registryScopes": ["*"],
  "signatureVerification": {"level": "strict"}, "trustStores": ["ca:e2e"], "trustedIdentities": ["*"]}]}`

// serviceAccount is deploy/rbac's ServiceAccount, as the API server names
// its tokens' user.
const serviceAccount = "system:serviceaccount:vouch:vouch"

// testGatekeeperCRD runs the Gatekeeper path with vouch's configuration
// coming from the cluster: the CRDs and RBAC of deploy/ applied with
// kubectl, a trust Secret and a ClusterVouchConfig created with kubectl,
// and `vouch serve --kubernetes` reading them with a token of the
// ServiceAccount of deploy/rbac (the API server's TokenRequest API), as a
// pod would. Through the real Gatekeeper, the signed image's Pod is
// admitted and the unsigned one denied with vouch's reason; then the
// Secret is rotated to CA2, and the image signed under CA1, admitted a
// moment ago, is denied while the one signed under CA2 is admitted, by the
// same vouch process. Gatekeeper runs with its provider response cache off
// (--external-data-provider-response-cache-ttl=0s): with its default of
// 3 minutes, a rotation reaches Pods that Gatekeeper has answered for
// within that time only when their cached answers expire.
func testGatekeeperCRD(t *testing.T, c *cluster, pki *ca, logDir, bin, caBundle, ca1, ca2, signed, unsigned, rotated string) {
	began := time.Now()
	c.mustKubectl(t, "", "apply", "-f", "../../deploy/crds/")
	c.mustKubectl(t, "", "wait", "--for", "condition=established", "--timeout", "60s", "-f", "../../deploy/crds/")
	c.mustKubectl(t, namespaces("vouch"), "apply", "-f", "-")
	c.mustKubectl(t, "", "apply", "-f", "../../deploy/rbac/")
	c.mustKubectl(t, "", "create", "secret", "generic", "notation-ca", "--namespace", "vouch", "--from-file=ca.crt="+ca1)
	c.mustKubectl(t, "", "create", "configmap", "notation-trust-policy", "--namespace", "vouch", "--from-literal=trustpolicy.json="+trustPolicy)
	c.mustKubectl(t, clusterVouchConfig, "apply", "-f", "-")

	// vouch's kubeconfig: a token of the ServiceAccount, from the
	// TokenRequest API (the API server signs it with its
	// --service-account-signing-key-file), as the kubelet mounts one.
	token := strings.TrimSpace(c.mustKubectl(t, "", "create", "token", "vouch", "--namespace", "vouch", "--duration", "2h"))
	kubeconfig := filepath.Join(t.TempDir(), "vouch.kubeconfig")
	writeFile(t, kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, certificate-authority: %q}
users:
- name: vouch
  user: {token: %q}
contexts:
- name: vouch
  context: {cluster: e2e, user: vouch}
current-context: vouch
`, c.server, pki.file("ca.crt"), token)))
	// The token is the ServiceAccount's, and gives no more than
	// deploy/rbac: it reads the ClusterVouchConfig, and may not list
	// Secrets.
	c.mustKubectl(t, "", "--kubeconfig", kubeconfig, "get", "clustervouchconfig", "vouch")
	if out, err := c.kubectl("", "--kubeconfig", kubeconfig, "get", "secrets", "--namespace", "vouch"); err == nil || !strings.Contains(out, `User "`+serviceAccount+`" cannot list resource "secrets"`) {
		t.Fatalf("listing Secrets with vouch's token: want forbidden to %s, got %v:\n%s", serviceAccount, err, out)
	}

	v := startVouch(t, logDir, "vouch-kubernetes", bin, pki, "--kubernetes", "--kubeconfig", kubeconfig, "--kubernetes-namespace", "vouch",
		"--client-ca-file", pki.file("ca.crt"))
	ready := `{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason}`
	testbed.WaitFor(t, "the ClusterVouchConfig Ready", 30*time.Second, v.proc, func() error {
		return wantJSONPath(c, "True Applied", ready, "clustervouchconfig", "vouch")
	})
	t.Logf("kubectl get cvc:\n%s", c.mustKubectl(t, "", "get", "cvc"))
	reason := providerReason(t, pki, v.addr, unsigned)
	t.Logf("vouch --kubernetes's reason for %s: %s", unsigned, reason)
	t.Logf("vouch --kubernetes ready after %s", time.Since(began).Round(time.Millisecond))

	gk := startGatekeeper(t, c, pki, logDir, "gatekeeper-crd", v, caBundle, "--external-data-provider-response-cache-ttl=0s")
	t.Logf("gatekeeper configured after %s", time.Since(began).Round(time.Millisecond))
	deniedBy := func(image string) string {
		return fmt.Sprintf("[vouch-verification] image %s denied by vouch: ", image)
	}
	waitDenied(t, c, gk, "crd-unsigned", unsigned, deniedBy(unsigned)+reason)
	if out, err := c.dryRunPod("crd-signed", signed); err != nil {
		t.Fatalf("under CA1, the signed Pod was not admitted: %v\n%s", err, out)
	}
	if out, err := c.dryRunPod("crd-rotated", rotated); err == nil || !strings.Contains(out, deniedBy(rotated)) {
		t.Fatalf("under CA1, the Pod signed under CA2: want denied by vouch, got %v:\n%s", err, out)
	}

	// Rotate the Secret to CA2 and time, through Gatekeeper, until the
	// image signed under CA1 is denied.
	rotatedSecret := c.mustKubectl(t, "", "create", "secret", "generic", "notation-ca", "--namespace", "vouch", "--from-file=ca.crt="+ca2,
		"--dry-run=client", "-o", "yaml")
	reloads := v.metric(t, `vouch_config_reloads_total{result="success"}`)
	issued := time.Now()
	c.mustKubectl(t, rotatedSecret, "replace", "-f", "-")
	replaced := time.Now()
	var attempts int
	var last string
	err := testbed.Poll(60*time.Second, 10*time.Millisecond, gk, func() error {
		attempts++
		out, err := c.dryRunPod(fmt.Sprintf("crd-signed-%d", attempts), signed)
		last = strings.TrimSpace(out)
		if err == nil {
			return fmt.Errorf("still admitted: %s", last)
		}
		if !strings.Contains(out, deniedBy(signed)) {
			return fmt.Errorf("refused, but not by vouch: %s", last)
		}
		return nil
	})
	denied := time.Now()
	if err != nil {
		t.Fatalf("waiting for the Pod signed under CA1 to be denied after the rotation: %v", err)
	}
	t.Logf("after the rotation: %s", last)
	// When vouch swapped the new trust in, by its own clock (the same
	// machine's).
	loaded := v.metric(t, `vouch_config_last_reload_success_timestamp_seconds`)
	sec, frac := math.Modf(loaded)
	swapped := time.Unix(int64(sec), int64(frac*1e9))
	t.Logf("rotation latency through Gatekeeper: %v from kubectl replace issued (%v from its return) to the first denial, %d kubectl dry runs; vouch swapped the new trust in %v after the replace was issued",
		denied.Sub(issued).Round(time.Millisecond), denied.Sub(replaced).Round(time.Millisecond), attempts, swapped.Sub(issued).Round(time.Millisecond))

	if out, err := c.dryRunPod("crd-rotated", rotated); err != nil {
		t.Fatalf("under CA2, the Pod signed under CA2 was not admitted: %v\n%s", err, out)
	}
	waitDenied(t, c, gk, "crd-unsigned-again", unsigned, deniedBy(unsigned)+reason)
	// The same process served throughout, and counted the rotation as a
	// reload; the status still says Ready (a Secret's change moves no
	// generation).
	if err := v.proc.Exited(); err != nil {
		t.Fatal(err)
	}
	if after := v.metric(t, `vouch_config_reloads_total{result="success"}`); after <= reloads {
		t.Errorf("vouch_config_reloads_total{result=\"success\"} %v before the rotation, %v after: want more", reloads, after)
	}
	if err := wantJSONPath(c, "True Applied", ready, "clustervouchconfig", "vouch"); err != nil {
		t.Error(err)
	}
	t.Logf("gatekeeper-crd path: %s", time.Since(began).Round(time.Millisecond))
}
