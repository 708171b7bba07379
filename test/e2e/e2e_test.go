//go:build linux

package e2e

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vouch-project/vouch/internal/testbed"
)

// Time bounds. A notation verification takes milliseconds, but the test
// machine has 2 cores shared with the rest of the test suite: the budgets
// are generous so that a busy machine does not turn an answer into a
// timeout.
const (
	vouchBudget     = "9s"
	providerTimeout = 10 // seconds, the Provider's timeout
	webhookTimeout  = 15 // seconds, the webhook configurations' timeoutSeconds
)

// TestKubernetes runs vouch serve behind a real kube-apiserver and answers
// its admission requests for a notation-signed image and an unsigned one,
// pushed to a distribution registry:
//
//   - gatekeeper: the real Gatekeeper manager calls vouch as its external
//     data provider, over mutual TLS, through the Providers, ConstraintTemplate,
//     Constraint and mutators shipped in deploy/gatekeeper: a signed Pod is
//     admitted with its image pinned to the digest vouch verified;
//   - webhook: vouch's own validating and mutating admission webhooks, no
//     Gatekeeper: an unsigned Deployment is denied with vouch's reason, a
//     signed one admitted with its image pinned to the digest;
//   - gatekeeper-crd: the real Gatekeeper again, calling a vouch serve
//     --kubernetes whose configuration is a ClusterVouchConfig and a trust
//     Secret applied with kubectl, read as the ServiceAccount of
//     deploy/rbac; the Secret rotated to another CA changes the verdicts
//     without a restart (crd_test.go).
//
// vouch is built with -tags kubernetes, as its container image is.
func TestKubernetes(t *testing.T) {
	began := time.Now()
	// Fail at once, with the hint, when a program is missing.
	for _, name := range []string{"etcd", "kube-apiserver", "kubectl", "gatekeeper", "gatekeeper-crds"} {
		clusterBin(t, name)
	}
	// The programs' logs: printed (their ends) when the test fails, kept
	// in $VOUCH_E2E_LOGS when set.
	logDir := os.Getenv("VOUCH_E2E_LOGS")
	if logDir == "" {
		logDir = t.TempDir()
	} else if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}

	reg := testbed.Distribution(t)
	signer := testbed.NewNotationSigner(t)
	push := testbed.NewPusher(t, reg.Host, "e2e/app")
	signedDesc := push.Image("signed", "signed")
	signer.Sign(push, signedDesc)
	unsignedDesc := push.Image("unsigned", "unsigned")
	// Signed under another CA, the one the gatekeeper-crd subtest
	// rotates its trust Secret to.
	signer2 := testbed.NewNotationSigner(t)
	signer2.Sign(push, push.Image("rotated", "rotated"))
	signed, unsigned, rotated := reg.Host+"/e2e/app:signed", reg.Host+"/e2e/app:unsigned", reg.Host+"/e2e/app:rotated"

	vouchBin := testbed.Vouch(t, "kubernetes")
	tlsDir := t.TempDir()
	if out, err := exec.Command(vouchBin, "serve", "--generate-tls", tlsDir).CombinedOutput(); err != nil {
		t.Fatalf("vouch serve --generate-tls: %v\n%s", err, out)
	}
	pki := loadCA(t, tlsDir)
	caBundle := base64.StdEncoding.EncodeToString(mustRead(t, pki.file("ca.crt")))

	// Two vouch servers: Gatekeeper's provider requires client
	// certificates issued by the CA (mutual TLS, as docs/serving.md
	// advises); the admission webhook's does not (the API server presents
	// none).
	vouchGK := startVouch(t, logDir, "vouch-gatekeeper", vouchBin, pki, "--notation-cert", signer.CAFile, "--client-ca-file", pki.file("ca.crt"))
	vouchWH := startVouch(t, logDir, "vouch-webhook", vouchBin, pki, "--notation-cert", signer.CAFile)

	// What vouch says of the unsigned image, asked directly: the reason
	// the cluster must show.
	reason := providerReason(t, pki, vouchGK.addr, unsigned)
	t.Logf("vouch's reason for %s: %s", unsigned, reason)

	c := startCluster(t, pki, logDir)
	t.Logf("control plane ready after %s", time.Since(began).Round(time.Millisecond))

	t.Run("gatekeeper", func(t *testing.T) {
		testGatekeeper(t, c, pki, logDir, vouchGK, caBundle, signed, unsigned, reg.Host+"/e2e/app@"+signedDesc.Digest.String(), reg.Host+"/e2e/app@"+unsignedDesc.Digest.String())
	})
	t.Run("webhook", func(t *testing.T) {
		testWebhook(t, c, vouchWH, caBundle, signed, unsigned, reason,
			reg.Host+"/e2e/app@"+signedDesc.Digest.String(), reg.Host+"/e2e/app@"+unsignedDesc.Digest.String())
	})
	t.Run("gatekeeper-crd", func(t *testing.T) {
		testGatekeeperCRD(t, c, pki, logDir, vouchBin, caBundle, signer.CAFile, signer2.CAFile, signed, unsigned, rotated)
	})
	t.Logf("whole test: %s", time.Since(began).Round(time.Millisecond))
}

// testGatekeeper runs deploy/gatekeeper as shipped, mutation included:
// Pods are pinned to the digest vouch verified before they are validated
// (signedPinned and unsignedPinned are the images' pinned references).
func testGatekeeper(t *testing.T, c *cluster, pki *ca, logDir string, v *vouchServer, caBundle, signed, unsigned, signedPinned, unsignedPinned string) {
	began := time.Now()
	gk := startGatekeeper(t, c, pki, logDir, "gatekeeper", v, caBundle, mutationWebhook, "--operation=mutation-status")
	t.Logf("gatekeeper configured after %s", time.Since(began).Round(time.Millisecond))

	run := func(name, image string) (string, error) { return c.dryRunPod(name, image) }
	// Validation sees the Pod as mutation left it: pinned.
	reason := providerReason(t, pki, v.addr, unsignedPinned)
	want := fmt.Sprintf("[vouch-verification] image %s denied by vouch: %s", unsignedPinned, reason)
	// The webhook configurations take a moment to reach the API server's
	// admission chain (until then the unsigned Pod passes, or is denied
	// unpinned), and the Providers a moment to reach Gatekeeper's
	// provider cache.
	waitDenied(t, c, gk, "unsigned", unsigned, want)
	if out, err := run("signed", signed); err != nil {
		t.Fatalf("the signed Pod was not admitted: %v\n%s", err, out)
	}
	asked := v.metric(t, `vouch_http_request_duration_seconds_count{code="200",endpoint="gatekeeper-verify"}`)
	if asked < 2 {
		t.Errorf("vouch answered Gatekeeper %v times, want at least 2 (signed and unsigned)", asked)
	}

	// The same Pods again: Gatekeeper answers from its cache of provider
	// responses, and the template sees status_code 0, which it accepts.
	if out, err := run("signed-again", signed); err != nil {
		t.Fatalf("the signed Pod, from Gatekeeper's cache, was not admitted: %v\n%s", err, out)
	}
	if out, err := run("unsigned-again", unsigned); err == nil || !strings.Contains(out, want) {
		t.Fatalf("the unsigned Pod, from Gatekeeper's cache: want denied with %q, got %v:\n%s", want, err, out)
	}
	if again := v.metric(t, `vouch_http_request_duration_seconds_count{code="200",endpoint="gatekeeper-verify"}`); again != asked {
		t.Errorf("vouch was asked %v times more: Gatekeeper did not answer from its cache, the template's status_code 0 case went untested", again-asked)
	}

	// A real create, not only a dry run.
	if out, err := c.kubectl("", "run", "unsigned", "--namespace", "gk", "--image", unsigned, "--restart", "Never"); err == nil || !strings.Contains(out, want) {
		t.Fatalf("creating the unsigned Pod: want denied with %q, got %v:\n%s", want, err, out)
	}
	c.mustKubectl(t, "", "run", "signed", "--namespace", "gk", "--image", signed, "--restart", "Never")
	// Gatekeeper's mutation pinned the tag to the digest vouch verified:
	// what runs is what was verified, wherever the tag points later.
	if got, err := c.jsonpath("{.spec.containers[0].image}", "pod", "signed", "--namespace", "gk"); err != nil || got != signedPinned {
		t.Fatalf("the signed Pod's image: %q, %v; want it pinned to %s", got, err, signedPinned)
	}
	if n := v.metric(t, `vouch_http_request_duration_seconds_count{code="200",endpoint="gatekeeper-mutate"}`); n < 1 {
		t.Errorf("vouch's mutate endpoint answered Gatekeeper %v times, want at least 1", n)
	}
	t.Logf("gatekeeper path: %s", time.Since(began).Round(time.Millisecond))
}

// mutationWebhook, among startGatekeeper's extra flags, runs Gatekeeper's
// mutation webhook: deploy/gatekeeper/mutation.yaml is applied too, and
// the API server sends it the Pods of namespace gk.
const mutationWebhook = "--operation=mutation-webhook"

// startGatekeeper runs the Gatekeeper manager out of cluster, with extra
// flags and its output in logDir/name.log, and configures it with deploy/gatekeeper as shipped, its Providers
// pointing at v, and a webhook configuration that sends it the Pods of
// namespace gk. When the test ends, the webhook configuration is deleted
// (leaving the other subtests' namespaces alone) and the manager killed.
// A second call in the same cluster (after the first's test ended)
// reconfigures what the first left.
func startGatekeeper(t *testing.T, c *cluster, pki *ca, logDir, name string, v *vouchServer, caBundle string, extra ...string) *testbed.Process {
	t.Helper()
	gk, webhookPort := launchGatekeeper(t, c, pki, logDir, name, "", extra...)

	// deploy/gatekeeper as shipped, with the Provider's url and caBundle
	// filled in for this vouch, and its timeout raised for a busy machine.
	provider := string(mustRead(t, "../../deploy/gatekeeper/provider.yaml"))
	provider = replaceLine(t, provider, "url:", "url: https://"+v.addr+"/gatekeeper/v1/verify")
	provider = replaceLine(t, provider, "caBundle:", "caBundle: "+caBundle)
	provider = replaceLine(t, provider, "timeout:", "timeout: "+strconv.Itoa(providerTimeout))
	c.mustKubectl(t, provider, "apply", "-f", "-")
	c.mustKubectl(t, "", "apply", "-f", "../../deploy/gatekeeper/template.yaml")
	testbed.WaitFor(t, "the template's CRD", 60*time.Second, gk, func() error {
		_, err := c.jsonpath("{.metadata.name}", "crd", "vouchverification.constraints.gatekeeper.sh")
		return err
	})
	testbed.WaitFor(t, "the template created", 60*time.Second, gk, func() error {
		return wantJSONPath(c, "true", "{.status.created}", "constrainttemplate", "vouchverification")
	})
	c.mustKubectl(t, "", "apply", "-f", "../../deploy/gatekeeper/constraint.yaml")
	testbed.WaitFor(t, "the constraint enforced", 60*time.Second, gk, func() error {
		return wantJSONPath(c, "true", "{.status.byPod[*].enforced}", "vouchverification", "vouch-verification")
	})
	if slices.Contains(extra, mutationWebhook) {
		mutation := string(mustRead(t, "../../deploy/gatekeeper/mutation.yaml"))
		mutation = replaceLine(t, mutation, "url:", "url: https://"+v.addr+"/gatekeeper/v1/mutate")
		mutation = replaceLine(t, mutation, "caBundle:", "caBundle: "+caBundle)
		mutation = replaceLine(t, mutation, "timeout:", "timeout: "+strconv.Itoa(providerTimeout))
		c.mustKubectl(t, mutation, "apply", "-f", "-")
		for _, name := range []string{"vouch-pin-containers", "vouch-pin-init-containers"} {
			testbed.WaitFor(t, "the mutator "+name+" enforced", 60*time.Second, gk, func() error {
				return wantJSONPath(c, "true", "{.status.byPod[*].enforced}", "assign", name)
			})
		}
		c.mustKubectl(t, fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: gatekeeper-e2e
webhooks:
  - name: mutation.gatekeeper.sh
    admissionReviewVersions: ["v1", "v1beta1"]
    sideEffects: None
    failurePolicy: Fail
    reinvocationPolicy: Never
    timeoutSeconds: %d
    clientConfig:
      url: https://127.0.0.1:%s/v1/mutate
      caBundle: %s
    namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: gk}
    rules:
      - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["pods"]}
`, webhookTimeout, webhookPort, caBundle), "apply", "-f", "-")
		t.Cleanup(func() {
			if out, err := c.kubectl("", "delete", "mutatingwebhookconfiguration", "gatekeeper-e2e"); err != nil {
				t.Errorf("deleting the mutating webhook configuration: %v\n%s", err, out)
			}
		})
	}

	registerGatekeeperValidation(t, c, webhookPort, caBundle)
	return gk
}

// launchGatekeeper applies Gatekeeper's CRDs and the namespaces
// gatekeeper-system and gk, runs the Gatekeeper manager out of cluster
// with extra flags, its output in logDir/name.log, and waits until it is
// ready; it returns the process and the port of its webhook. With hosts
// set, the manager sees that file as /etc/hosts (privateHosts). It is
// killed when the test ends.
func launchGatekeeper(t *testing.T, c *cluster, pki *ca, logDir, name, hosts string, extra ...string) (*testbed.Process, string) {
	t.Helper()
	began := time.Now()
	// Gatekeeper's CRDs, from the chart of the same module as the manager
	// (kubectl does not read a folder through a symbolic link).
	crds, err := filepath.EvalSymlinks(clusterBin(t, "gatekeeper-crds"))
	if err != nil {
		t.Fatal(err)
	}
	c.mustKubectl(t, "", "apply", "--server-side", "-f", crds)
	c.mustKubectl(t, "", "wait", "--for", "condition=established", "--timeout", "60s", "-f", crds)
	c.mustKubectl(t, namespaces("gatekeeper-system", "gk"), "apply", "-f", "-")

	// The manager, out of cluster. Its webhook certificate is also its
	// client certificate towards providers: issued by the CA that vouch's
	// --client-ca-file trusts.
	certDir, cacheDir := t.TempDir(), t.TempDir()
	pki.issue(t, certDir, "tls.crt", "tls.key", pkix.Name{CommonName: "gatekeeper-webhook-service.gatekeeper-system.svc"},
		x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	healthAddr, webhookAddr := testbed.FreeAddr(t), testbed.FreeAddr(t)
	_, webhookPort, _ := net.SplitHostPort(webhookAddr)
	path, args := clusterBin(t, "gatekeeper"), append([]string{"--operation=webhook", "--operation=audit", "--operation=status", "--operation=generate",
		"--disable-cert-rotation", "--cert-dir=" + certDir, "--api-cache-dir=" + cacheDir,
		"--health-addr=" + healthAddr, "--host=127.0.0.1", "--port=" + webhookPort,
		// No metrics listener: an exporter towards a port nobody serves.
		"--metrics-backend=opentelemetry", "--otlp-endpoint=" + testbed.FreeAddr(t),
		"--debug-use-fake-pod", "--log-level=INFO"}, extra...)
	if hosts != "" {
		path, args = privateHosts(t, hosts, path, args...)
	}
	gk := start(t, logDir, name, []string{"POD_NAMESPACE=gatekeeper-system", "KUBECONFIG=" + c.kubeconfig},
		nil, // It takes more than 8 s to stop on SIGTERM: killed.
		path, args...)
	plain := &http.Client{Timeout: 2 * time.Second}
	testbed.WaitFor(t, "gatekeeper ready", 90*time.Second, gk, func() error { return testbed.HTTPReady(plain, "http://"+healthAddr+"/readyz") })
	t.Logf("gatekeeper ready after %s", time.Since(began).Round(time.Millisecond))
	return gk, webhookPort
}

// registerGatekeeperValidation makes the API server send the Pods of
// namespace gk to Gatekeeper's validating webhook on 127.0.0.1:port, whose
// certificate caBundle verifies, until the test ends.
func registerGatekeeperValidation(t *testing.T, c *cluster, port, caBundle string) {
	t.Helper()
	// The API server asks Gatekeeper about Pods in namespace gk; fail
	// closed, so that an unreachable Gatekeeper cannot pass for an
	// admission.
	c.mustKubectl(t, fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: gatekeeper-e2e
webhooks:
  - name: validation.gatekeeper.sh
    admissionReviewVersions: ["v1", "v1beta1"]
    sideEffects: None
    failurePolicy: Fail
    timeoutSeconds: %d
    clientConfig:
      url: https://127.0.0.1:%s/v1/admit
      caBundle: %s
    namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: gk}
    rules:
      - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["pods"]}
`, webhookTimeout, port, caBundle), "apply", "-f", "-")
	t.Cleanup(func() {
		if out, err := c.kubectl("", "delete", "validatingwebhookconfiguration", "gatekeeper-e2e"); err != nil {
			t.Errorf("deleting the webhook configuration: %v\n%s", err, out)
		}
	})
}

// dryRunPod asks the API server to create a Pod of one container in
// namespace gk (a server-side dry run: admission runs, nothing is stored)
// and returns kubectl's output.
func (c *cluster) dryRunPod(name, image string) (string, error) {
	return c.kubectl("", "run", name, "--namespace", "gk", "--image", image, "--restart", "Never", "--dry-run=server", "-o", "name")
}

// waitDenied waits until a Pod of image in namespace gk is denied by
// Gatekeeper with a message containing want.
func waitDenied(t *testing.T, c *cluster, gk *testbed.Process, name, image, want string) {
	t.Helper()
	testbed.WaitFor(t, "the "+name+" Pod denied with vouch's reason", 60*time.Second, gk, func() error {
		out, err := c.dryRunPod(name, image)
		if err == nil {
			return fmt.Errorf("admitted: %s", strings.TrimSpace(out))
		}
		if !strings.Contains(out, `admission webhook "validation.gatekeeper.sh" denied the request`) || !strings.Contains(out, want) {
			return fmt.Errorf("refused, but not with %q: %s", want, strings.TrimSpace(out))
		}
		t.Logf("%s: %s", name, strings.TrimSpace(out))
		return nil
	})
}

// namespaces is a manifest of the namespaces named, for kubectl apply
// (which, unlike create, accepts those that exist).
func namespaces(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n", n)
	}
	return b.String()
}

func testWebhook(t *testing.T, c *cluster, v *vouchServer, caBundle, signed, unsigned, reason, signedPinned, unsignedPinned string) {
	began := time.Now()
	c.mustKubectl(t, "", "create", "namespace", "native")
	webhooks := ""
	for _, kind := range []string{"Mutating", "Validating"} {
		path, name, extra := "/admission/v1/validate", "validate.vouch.dev", ""
		if kind == "Mutating" {
			path, name, extra = "/admission/v1/mutate", "mutate.vouch.dev", "\n    reinvocationPolicy: IfNeeded"
		}
		webhooks += fmt.Sprintf(`---
apiVersion: admissionregistration.k8s.io/v1
kind: %sWebhookConfiguration
metadata:
  name: vouch-e2e
webhooks:
  - name: %s
    admissionReviewVersions: ["v1"]
    sideEffects: None
    failurePolicy: Fail
    timeoutSeconds: %d%s
    clientConfig:
      url: https://%s%s
      caBundle: %s
    namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: native}
    rules:
      - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["pods"]}
      - {apiGroups: ["apps"], apiVersions: ["v1"], operations: ["CREATE", "UPDATE"], resources: ["deployments"]}
`, kind, name, webhookTimeout, extra, v.addr, path, caBundle)
	}
	c.mustKubectl(t, webhooks, "apply", "-f", "-")

	create := func(name, image string, dryRun bool) (string, error) {
		args := []string{"create", "-f", "-", "-o", "jsonpath={.spec.template.spec.containers[0].image}"}
		if dryRun {
			args = append(args, "--dry-run=server")
		}
		return c.kubectl(deployment(name, image), args...)
	}
	// The mutating webhook pins the unsigned image too; the validating
	// webhook then denies it by its digest.
	want := fmt.Sprintf(`admission webhook "validate.vouch.dev" denied the request: vouch denied 1 of 1 images: container "app" image %s: %s`, unsignedPinned, reason)
	testbed.WaitFor(t, "both webhooks in the admission chain", 30*time.Second, v.proc, func() error {
		if out, err := create("signed", signed, true); err != nil || out != signedPinned {
			return fmt.Errorf("signed Deployment, dry run: %v: %s", err, out)
		}
		if out, err := create("unsigned", unsigned, true); err == nil {
			return fmt.Errorf("unsigned Deployment admitted: %s", out)
		}
		return nil
	})
	if out, err := create("unsigned", unsigned, false); err == nil || !strings.Contains(out, want) {
		t.Fatalf("the unsigned Deployment: want denied with %q, got %v:\n%s", want, err, out)
	} else {
		t.Logf("unsigned: %s", strings.TrimSpace(out))
	}
	if out, err := create("signed", signed, false); err != nil {
		t.Fatalf("the signed Deployment was not admitted: %v\n%s", err, out)
	}
	got, err := c.jsonpath("{.spec.template.spec.containers[0].image}", "deployment", "signed", "--namespace", "native")
	if err != nil || got != signedPinned {
		t.Fatalf("the signed Deployment's image, read back: %q (%v), want %q", got, err, signedPinned)
	}
	if n := v.metric(t, `vouch_http_request_duration_seconds_count{code="200",endpoint="admission-mutate"}`); n < 1 {
		t.Errorf("vouch's mutating webhook was called %v times", n)
	}
	t.Logf("webhook path: %s", time.Since(began).Round(time.Millisecond))
}

// deployment is a Deployment of one container named app.
func deployment(name, image string) string {
	return fmt.Sprintf(`{"apiVersion": "apps/v1", "kind": "Deployment",
 "metadata": {"name": %q, "namespace": "native"},
 "spec": {"replicas": 1, "selector": {"matchLabels": {"app": %[1]q}},
  "template": {"metadata": {"labels": {"app": %[1]q}},
   "spec": {"containers": [{"name": "app", "image": %q}]}}}}`, name, image)
}

// vouchServer is a `vouch serve` process.
type vouchServer struct {
	proc        *testbed.Process
	addr        string // HTTPS, host:port
	metricsAddr string // plain HTTP, host:port
}

// startVouch runs vouch serve with the certificates of --generate-tls and
// the extra flags (what it trusts), and waits until it is ready.
func startVouch(t *testing.T, logDir, name, bin string, pki *ca, extra ...string) *vouchServer {
	t.Helper()
	v := &vouchServer{addr: testbed.FreeAddr(t), metricsAddr: testbed.FreeAddr(t)}
	args := append([]string{"serve", "--listen", v.addr, "--metrics-listen", v.metricsAddr,
		"--tls-cert-file", pki.file("tls.crt"), "--tls-key-file", pki.file("tls.key"),
		"--plain-http", "--allow-internal-registry", "127.0.0.1", "--budget", vouchBudget}, extra...)
	v.proc = start(t, logDir, name, nil, syscall.SIGTERM, bin, args...)
	plain := &http.Client{Timeout: 2 * time.Second}
	testbed.WaitFor(t, name+" ready", 30*time.Second, v.proc, func() error { return testbed.HTTPReady(plain, "http://"+v.metricsAddr+"/readyz") })
	return v
}

// metric returns the value of one Prometheus series (0 when absent).
func (v *vouchServer) metric(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + v.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	f, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// providerReason asks vouch's Gatekeeper endpoint about image, as
// Gatekeeper does (with a client certificate), and returns its reason.
func providerReason(t *testing.T, pki *ca, addr, image string) string {
	t.Helper()
	client := pki.tlsClient(t, pki.file("client.crt"), pki.file("client.key"))
	return providerReasonWith(t, client, "https://"+addr, image)
}

// providerReasonWith is providerReason with an HTTPS client of the
// caller's, towards vouch at base (https://HOST:PORT).
func providerReasonWith(t *testing.T, client *http.Client, base, image string) string {
	t.Helper()
	client.Timeout = 30 * time.Second
	body := fmt.Sprintf(`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":[%q]}}`, image)
	resp, err := client.Post(base+"/gatekeeper/v1/verify", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pr struct {
		Response struct {
			Items []struct {
				Value struct {
					IsSuccess bool   `json:"isSuccess"`
					Reason    string `json:"reason"`
				} `json:"value"`
				Error string `json:"error"`
			} `json:"items"`
		} `json:"response"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&pr); err != nil {
		t.Fatal(err)
	}
	if len(pr.Response.Items) != 1 || pr.Response.Items[0].Error != "" || pr.Response.Items[0].Value.IsSuccess || pr.Response.Items[0].Value.Reason == "" {
		t.Fatalf("vouch on %s: want a denial with a reason, got %+v", image, pr.Response)
	}
	return pr.Response.Items[0].Value.Reason
}

// wantJSONPath returns nil when the field of the object is want.
func wantJSONPath(c *cluster, want, path string, args ...string) error {
	got, err := c.jsonpath(path, args...)
	if err != nil {
		return err
	}
	if strings.TrimSpace(got) != want {
		return fmt.Errorf("%s is %q, want %q", path, got, want)
	}
	return nil
}

// replaceLine replaces the one line of doc whose first field is key,
// keeping its indentation.
func replaceLine(t *testing.T, doc, key, with string) string {
	t.Helper()
	lines := strings.Split(doc, "\n")
	n := 0
	for i, l := range lines {
		trimmed := strings.TrimLeft(l, " ")
		if strings.HasPrefix(trimmed, key) {
			lines[i] = l[:len(l)-len(trimmed)] + with
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d lines start with %q, want 1", n, key)
	}
	return strings.Join(lines, "\n")
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
