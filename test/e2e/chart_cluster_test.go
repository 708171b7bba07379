//go:build linux

package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/vouch-project/vouch/internal/testbed"
)

// TestChartServerDryRun renders the chart with every case's values and has
// the real kube-apiserver of the testbed check each rendering with kubectl
// apply --dry-run=server: every object's schema, references the API
// server resolves (roles, namespaces) and the webhook configurations'
// validation. Gatekeeper's CRDs are its own; the chart's CRDs are applied
// from charts/vouch/crds as helm install does; the ServiceMonitor,
// cert-manager's Certificate and Issuer and the Constraint's kind are
// stand-ins from testdata/chart/crds (their operators are not in the
// testbed), with open schemas: for those, the dry run checks where the
// objects go, not their fields.
func TestChartServerDryRun(t *testing.T) {
	helmBin(t)
	for _, name := range []string{"etcd", "kube-apiserver", "kubectl", "gatekeeper-crds"} {
		clusterBin(t, name)
	}
	logDir := t.TempDir()
	tlsDir := t.TempDir()
	if out, err := exec.Command(testbed.Vouch(t, "kubernetes"), "serve", "--generate-tls", tlsDir).CombinedOutput(); err != nil {
		t.Fatalf("vouch serve --generate-tls: %v\n%s", err, out)
	}
	c := startCluster(t, loadCA(t, tlsDir), logDir)

	crds, err := filepath.EvalSymlinks(clusterBin(t, "gatekeeper-crds"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{crds, filepath.Join(chartDir, "crds"), filepath.Join("testdata", "chart", "crds")} {
		c.mustKubectl(t, "", "apply", "--server-side", "-f", dir)
		c.mustKubectl(t, "", "wait", "--for", "condition=established", "--timeout", "60s", "-f", dir)
	}
	c.mustKubectl(t, namespaces(releaseNamespace, "team-a"), "apply", "-f", "-")

	for _, tc := range chartCases {
		t.Run(tc.name, func(t *testing.T) {
			manifests, r := render(t, tc)
			out, err := c.kubectl(manifests, "apply", "--dry-run=server", "-f", "-")
			if err != nil {
				t.Fatalf("kubectl apply --dry-run=server of the rendered chart: %v\n%s", err, out)
			}
			// One line per object: "KIND/NAME created (server dry run)".
			if n := strings.Count(out, "(server dry run)"); n != len(r.objects) {
				t.Errorf("the API server checked %d objects, the chart rendered %d:\n%s", n, len(r.objects), out)
			}
		})
	}
}

// The release's ServiceAccount as the API server names it (the chart's
// full name, "vouch"), and the groups the API server gives every token of
// a ServiceAccount of its namespace.
const chartSA = "system:serviceaccount:" + releaseNamespace + ":" + releaseName

var chartSAGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + releaseNamespace, "system:authenticated"}

// What a cluster's DNS resolves and this machine's does not, resolved to
// 127.0.0.1 by the private /etc/hosts of Gatekeeper and kube-apiserver
// (privateHosts): the release's Service, named by the Provider's url, and
// vouch's "pod", the address of the EndpointSlice through which the API
// server reaches the Service that the webhook configurations name.
const (
	chartServiceHost = releaseName + "." + releaseNamespace + ".svc"
	chartPodHost     = "vouch-pod." + releaseNamespace + ".e2e.test"
)

// tenantVouchConfig is a tenant's VouchConfig, with no Secret or
// ConfigMap to read: SBOMs for team-b's images.
const tenantVouchConfig = `apiVersion: config.vouch.dev/v1alpha1
kind: VouchConfig
metadata:
  name: team-b
  namespace: team-b
spec:
  verifiers:
    - name: team-b-sbom
      type: sbom
      sbom:
        deniedLicenses: [AGPL-3.0-only]
  policy:
    scopes:
      - name: team-b-sbom
        repositories: ["registry.example.com/team-b/*"]
        require:
          - artifactType: application/spdx+json
            verifiers: [team-b-sbom]
`

// The audit policy of TestChartOnCluster's API server: who did what, and
// the answer, for every request.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
`

// TestChartOnCluster installs the chart on the testbed's real
// kube-apiserver as helm install would (its crds/, then what helm template
// renders, applied with kubectl) and runs vouch as a process with exactly
// the arguments and environment of the rendered Deployment's container,
// talking to the API server as the release's ServiceAccount: a kubeconfig
// whose user impersonates the ServiceAccount and its groups, so that what
// vouch may do is what the chart's RBAC grants, and nothing else. Twice:
//
//   - gatekeeper (the default values): the real Gatekeeper calls vouch
//     through the rendered Provider, ConstraintTemplate and Constraint;
//     the chart's mutating webhook pins Pods' images, reached through its
//     Service reference; a signed image's Pod is admitted, an unsigned one
//     denied with vouch's reason;
//   - webhook (gatekeeper.enabled=false, admissionWebhooks.validating.enabled=true):
//     the chart's own validating and mutating webhooks, no Gatekeeper: an
//     unsigned Deployment is denied with vouch's reason, a signed one
//     admitted, pinned.
//
// Every caller trusts vouch through the rendered caBundles and checks the
// Service's name in the certificate of the chart-generated TLS Secret,
// which vouch serves. Then the RBAC is shown sufficient (the
// ClusterVouchConfig's status says Ready, and the API server's audit log
// shows no request of the ServiceAccount refused) and no broader (kubectl
// auth can-i as the ServiceAccount, for what it must not read or write).
//
// What a process cannot have, and only that, is replaced (chartProcess
// says how): the mounted Secret and ConfigMap volumes are folders holding
// the rendered objects' data; the listen addresses are free ports on
// 127.0.0.1; the in-cluster configuration (a mounted token) is
// --kubeconfig, the impersonating kubeconfig; the Downward API's
// POD_NAMESPACE is the release's namespace. For the Service network: the
// API server runs with --enable-aggregator-routing and resolves the
// Service to an EndpointSlice the test writes (as the endpoint-slice
// controller would for the pod), whose address its private /etc/hosts
// maps to 127.0.0.1; Gatekeeper resolves the Provider's host name through
// its private /etc/hosts, and the Provider's port is vouch's (the
// Service's port 443 → targetPort mapping is the Service network's).
func TestChartOnCluster(t *testing.T) {
	began := time.Now()
	helmBin(t)
	for _, name := range []string{"etcd", "kube-apiserver", "kubectl", "gatekeeper", "gatekeeper-crds"} {
		clusterBin(t, name)
	}
	logDir := os.Getenv("VOUCH_E2E_LOGS")
	if logDir == "" {
		logDir = t.TempDir()
	} else if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}

	reg := testbed.Distribution(t)
	signer := testbed.NewNotationSigner(t)
	push := testbed.NewPusher(t, reg.Host, "chart/app")
	signedDesc := push.Image("signed", "signed")
	signer.Sign(push, signedDesc)
	unsignedDesc := push.Image("unsigned", "unsigned")
	img := imagesOf{
		signed: reg.Host + "/chart/app:signed", unsigned: reg.Host + "/chart/app:unsigned",
		signedPinned: reg.Host + "/chart/app@" + signedDesc.Digest.String(), unsignedPinned: reg.Host + "/chart/app@" + unsignedDesc.Digest.String(),
	}

	// The testbed's own certificates (the API server's, the
	// administrator's, Gatekeeper's webhook): not the chart's, which
	// vouch serves.
	vouchBin := testbed.Vouch(t, "kubernetes")
	tlsDir := t.TempDir()
	if out, err := exec.Command(vouchBin, "serve", "--generate-tls", tlsDir).CombinedOutput(); err != nil {
		t.Fatalf("vouch serve --generate-tls: %v\n%s", err, out)
	}
	pki := loadCA(t, tlsDir)

	dir := t.TempDir()
	hosts, policy, audit := filepath.Join(dir, "hosts"), filepath.Join(dir, "audit-policy.yaml"), filepath.Join(dir, "audit.log")
	writeFile(t, hosts, append(mustRead(t, "/etc/hosts"), fmt.Sprintf("\n127.0.0.1 %s %s\n", chartServiceHost, chartPodHost)...))
	writeFile(t, policy, []byte(auditPolicy))
	c := startClusterWith(t, pki, logDir, clusterOptions{hosts: hosts, apiserverArgs: []string{
		// A webhook's Service reference goes to an address of the
		// Service's EndpointSlices, not to its cluster IP, which nothing
		// serves here.
		"--enable-aggregator-routing=true",
		"--audit-policy-file", policy, "--audit-log-path", audit}})
	t.Logf("control plane ready after %s", time.Since(began).Round(time.Millisecond))

	// Gatekeeper's CRDs (the Provider's and ConstraintTemplate's kinds),
	// then the chart's crds/, as helm install applies them.
	gkCRDs, err := filepath.EvalSymlinks(clusterBin(t, "gatekeeper-crds"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{gkCRDs, filepath.Join(chartDir, "crds")} {
		c.mustKubectl(t, "", "apply", "--server-side", "-f", d)
		c.mustKubectl(t, "", "wait", "--for", "condition=established", "--timeout", "60s", "-f", d)
	}
	c.mustKubectl(t, namespaces(releaseNamespace, "native"), "apply", "-f", "-")
	// What the cluster's administrator creates beside the release: the
	// trust that the ClusterVouchConfig of testdata/chart/testbed.yaml
	// references, and a Secret of the same namespace vouch must not read.
	c.mustKubectl(t, "", "create", "secret", "generic", "notation-ca", "--namespace", releaseNamespace, "--from-file=ca.crt="+signer.CAFile)
	c.mustKubectl(t, "", "create", "configmap", "notation-trust-policy", "--namespace", releaseNamespace, "--from-literal=trustpolicy.json="+trustPolicy)
	c.mustKubectl(t, "", "create", "secret", "generic", "unrelated", "--namespace", releaseNamespace, "--from-literal=password=hunter2")
	// A tenant's VouchConfig (of images that are not the test's), which
	// vouch must see and write the status of.
	c.mustKubectl(t, namespaces("team-b")+"---\n"+tenantVouchConfig, "apply", "-f", "-")

	t.Run("gatekeeper", func(t *testing.T) {
		testChartGatekeeper(t, c, pki, logDir, vouchBin, hosts, img)
	})
	t.Run("webhook", func(t *testing.T) {
		testChartWebhook(t, c, pki, logDir, vouchBin, img)
	})
	t.Run("audit", func(t *testing.T) {
		checkChartAudit(t, audit)
	})
	t.Logf("whole test: %s", time.Since(began).Round(time.Millisecond))
}

// imagesOf are the test's images, by tag and pinned to their digests.
type imagesOf struct {
	signed, unsigned, signedPinned, unsignedPinned string
}

func testChartGatekeeper(t *testing.T, c *cluster, pki *ca, logDir, bin, hosts string, img imagesOf) {
	began := time.Now()
	rel := installChart(t, c, pki, logDir, bin, "--api-versions", constraintAPI)
	gk, webhookPort := launchGatekeeper(t, c, pki, logDir, "gatekeeper", hosts)
	testbed.WaitFor(t, "the template created", 60*time.Second, gk, func() error {
		return wantJSONPath(c, "true", "{.status.created}", "constrainttemplate", "vouchverification")
	})
	c.mustKubectl(t, rel.constraint, "apply", "-f", "-")
	t.Cleanup(func() {
		if out, err := c.kubectl(rel.constraint, "delete", "--ignore-not-found", "-f", "-"); err != nil {
			t.Errorf("deleting the Constraint: %v\n%s", err, out)
		}
	})
	testbed.WaitFor(t, "the constraint enforced", 60*time.Second, gk, func() error {
		return wantJSONPath(c, "true", "{.status.byPod[*].enforced}", "vouchverification", releaseName)
	})
	registerGatekeeperValidation(t, c, webhookPort, base64.StdEncoding.EncodeToString(mustRead(t, pki.file("ca.crt"))))
	t.Logf("gatekeeper configured after %s", time.Since(began).Round(time.Millisecond))

	// The chart's mutating webhook pins the Pod's image first; Gatekeeper
	// then asks vouch about the pinned reference.
	reason := providerReasonWith(t, rel.client(t), rel.base, img.unsignedPinned)
	// Gatekeeper names the Constraint that denied: the release's.
	constraint := parseManifests(t, rel.constraint).objects[0].str("metadata", "name")
	want := fmt.Sprintf("[%s] image %s denied by vouch: %s", constraint, img.unsignedPinned, reason)
	waitDenied(t, c, gk, "unsigned", img.unsigned, want)
	if out, err := c.dryRunPod("signed", img.signed); err != nil {
		t.Fatalf("the signed Pod was not admitted: %v\n%s", err, out)
	}
	if out, err := c.kubectl("", "run", "unsigned", "--namespace", "gk", "--image", img.unsigned, "--restart", "Never"); err == nil || !strings.Contains(out, want) {
		t.Fatalf("creating the unsigned Pod: want denied with %q, got %v:\n%s", want, err, out)
	}
	c.mustKubectl(t, "", "run", "signed", "--namespace", "gk", "--image", img.signed, "--restart", "Never")
	if got, err := c.jsonpath("{.spec.containers[0].image}", "pod", "signed", "--namespace", "gk"); err != nil || got != img.signedPinned {
		t.Fatalf("the signed Pod's image: %q, %v; want it pinned by the chart's mutating webhook to %s", got, err, img.signedPinned)
	}
	for _, endpoint := range []string{"gatekeeper-verify", "admission-mutate"} {
		if n := rel.vouch.metric(t, `vouch_http_request_duration_seconds_count{code="200",endpoint="`+endpoint+`"}`); n < 1 {
			t.Errorf("vouch's %s endpoint answered %v times, want at least once", endpoint, n)
		}
	}
	checkChartRBAC(t, c)
	t.Logf("gatekeeper path: %s", time.Since(began).Round(time.Millisecond))
}

func testChartWebhook(t *testing.T, c *cluster, pki *ca, logDir, bin string, img imagesOf) {
	began := time.Now()
	rel := installChart(t, c, pki, logDir, bin, "--values", filepath.Join("testdata", "chart", "gatekeeper-off-webhook-on.yaml"))
	if _, ok := rel.r.byID["Provider/vouch"]; ok {
		t.Fatal("the chart rendered a Provider with gatekeeper.enabled=false")
	}
	reason := providerReasonWith(t, rel.client(t), rel.base, img.unsignedPinned)
	create := func(name, image string, dryRun bool) (string, error) {
		args := []string{"create", "-f", "-", "-o", "jsonpath={.spec.template.spec.containers[0].image}"}
		if dryRun {
			args = append(args, "--dry-run=server")
		}
		return c.kubectl(deployment(name, image), args...)
	}
	want := fmt.Sprintf(`admission webhook "validate.vouch.dev" denied the request: vouch denied 1 of 1 images: container "app" image %s: %s`, img.unsignedPinned, reason)
	testbed.WaitFor(t, "both webhooks in the admission chain", 30*time.Second, rel.vouch.proc, func() error {
		if out, err := create("signed", img.signed, true); err != nil || out != img.signedPinned {
			return fmt.Errorf("signed Deployment, dry run: %v: %s", err, out)
		}
		if out, err := create("unsigned", img.unsigned, true); err == nil {
			return fmt.Errorf("unsigned Deployment admitted: %s", out)
		}
		return nil
	})
	if out, err := create("unsigned", img.unsigned, false); err == nil || !strings.Contains(out, want) {
		t.Fatalf("the unsigned Deployment: want denied with %q, got %v:\n%s", want, err, out)
	} else {
		t.Logf("unsigned: %s", strings.TrimSpace(out))
	}
	if out, err := create("signed", img.signed, false); err != nil {
		t.Fatalf("the signed Deployment was not admitted: %v\n%s", err, out)
	}
	if got, err := c.jsonpath("{.spec.template.spec.containers[0].image}", "deployment", "signed", "--namespace", "native"); err != nil || got != img.signedPinned {
		t.Fatalf("the signed Deployment's image, read back: %q (%v), want %q", got, err, img.signedPinned)
	}
	for _, endpoint := range []string{"admission-validate", "admission-mutate"} {
		if n := rel.vouch.metric(t, `vouch_http_request_duration_seconds_count{code="200",endpoint="`+endpoint+`"}`); n < 1 {
			t.Errorf("vouch's %s endpoint answered %v times, want at least once", endpoint, n)
		}
	}
	checkChartRBAC(t, c)
	t.Logf("webhook path: %s", time.Since(began).Round(time.Millisecond))
}

// chartRelease is the chart installed by installChart, and the vouch
// process that serves it.
type chartRelease struct {
	r          rendered
	constraint string // the Constraint, for the caller to apply once its kind exists ("" when none)
	vouch      *vouchServer
	base       string // https://127.0.0.1:PORT, vouch's HTTPS listener
	caBundle   string // the rendered caBundle (base64)
}

// client returns an HTTPS client that trusts the rendered caBundle and
// checks the Service's name, as the API server and Gatekeeper do.
func (rel *chartRelease) client(t *testing.T) *http.Client {
	t.Helper()
	pem, err := base64.StdEncoding.DecodeString(rel.caBundle)
	pool := x509.NewCertPool()
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("the rendered caBundle is not base64 of PEM certificates: %v", err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: chartServiceHost, MinVersion: tls.VersionTLS13}}}
}

// installChart renders the chart with testdata/chart/testbed.yaml and
// extra helm template arguments, applies what it renders (but the
// Constraint, whose kind Gatekeeper makes), runs vouch as chartProcess
// says, and points the release's Service at it. When the test ends, the
// release's objects are deleted and vouch is stopped.
func installChart(t *testing.T, c *cluster, pki *ca, logDir, bin string, extra ...string) *chartRelease {
	t.Helper()
	manifests, r := render(t, chartCase{extra: append([]string{"--values", filepath.Join("testdata", "chart", "testbed.yaml")}, extra...)})
	rel := &chartRelease{}
	bundles := caBundles(r)
	if len(bundles) == 0 || slices.ContainsFunc(bundles, func(b string) bool { return b != bundles[0] }) {
		t.Fatalf("the rendered caBundles: %d, not one and the same", len(bundles))
	}
	rel.caBundle = bundles[0]
	if got := r.get(t, "Secret/vouch-tls").str("data", "ca.crt"); got != rel.caBundle {
		t.Fatal("the caBundles are not ca.crt of the chart-generated Secret vouch-tls")
	}

	httpsAddr, metricsAddr := testbed.FreeAddr(t), testbed.FreeAddr(t)
	_, httpsPort, _ := net.SplitHostPort(httpsAddr)
	// The Provider's url names the Service's port; Gatekeeper reaches
	// vouch's own.
	if p, ok := r.byID["Provider/vouch"]; ok {
		svcURL := "https://" + chartServiceHost + ":" + fmt.Sprint(r.get(t, "Service/vouch").dig("spec", "ports", 0, "port")) + "/"
		if !strings.HasPrefix(p.str("spec", "url"), svcURL) {
			t.Fatalf("the Provider's url %s is not on the Service %s", p.str("spec", "url"), svcURL)
		}
		manifests = strings.Replace(manifests, svcURL, "https://"+chartServiceHost+":"+httpsPort+"/", 1)
		r = parseManifests(t, manifests)
	}
	var now []string
	for _, o := range r.objects {
		doc, err := yaml.Marshal(map[string]any(o))
		if err != nil {
			t.Fatal(err)
		}
		if o.str("kind") == "VouchVerification" {
			rel.constraint = string(doc)
		} else {
			now = append(now, string(doc))
		}
	}
	rel.r = r
	stream := strings.Join(now, "---\n")
	c.mustKubectl(t, stream, "apply", "-f", "-")
	t.Cleanup(func() {
		if out, err := c.kubectl(stream, "delete", "--ignore-not-found", "--wait=false", "-f", "-"); err != nil {
			t.Errorf("deleting the release: %v\n%s", err, out)
		}
	})

	rel.vouch = chartProcess(t, c, pki, logDir, bin, r, httpsAddr, metricsAddr)
	rel.base = "https://" + httpsAddr
	ready := `{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason}`
	testbed.WaitFor(t, "the ClusterVouchConfig Ready", 60*time.Second, rel.vouch.proc, func() error {
		return wantJSONPath(c, "True Applied", ready, "clustervouchconfig", "vouch")
	})
	testbed.WaitFor(t, "the tenant's VouchConfig Ready", 60*time.Second, rel.vouch.proc, func() error {
		return wantJSONPath(c, "True", `{.status.conditions[?(@.type=="Ready")].status}`, "vouchconfig", "team-b", "--namespace", "team-b")
	})
	return rel
}

// chartProcess runs vouch with the arguments and environment of the
// rendered Deployment's container, but for what a process cannot have:
//
//   - each mounted Secret or ConfigMap volume is a folder holding the
//     rendered object's data, and arguments that name files under the
//     mount path name them in that folder; an emptyDir is an empty folder;
//   - --listen and --metrics-listen are httpsAddr and metricsAddr, on
//     127.0.0.1;
//   - the in-cluster configuration (the kubelet's mounted token) is
//     --kubeconfig, a kubeconfig whose user impersonates the release's
//     ServiceAccount and its groups;
//   - environment variables from the Downward API's metadata.namespace are
//     the release's namespace, and the process has no other environment
//     (env -i) than the container's.
//
// Then the release's Service gets an EndpointSlice, as the endpoint-slice
// controller makes for a ready pod: its address is chartPodHost (the API
// server's private /etc/hosts maps it to 127.0.0.1), its ports vouch's.
func chartProcess(t *testing.T, c *cluster, pki *ca, logDir, bin string, r rendered, httpsAddr, metricsAddr string) *vouchServer {
	t.Helper()
	ctr := container(t, r)
	pod := asObject(r.get(t, "Deployment/vouch").dig("spec", "template", "spec"))
	if sa := pod.str("serviceAccountName"); "system:serviceaccount:"+releaseNamespace+":"+sa != chartSA {
		t.Fatalf("the pod runs as ServiceAccount %s, not %s", sa, chartSA)
	}

	// The volumes, as folders.
	volumes := map[string]object{}
	for _, v := range pod.dig("volumes").([]any) {
		volumes[asObject(v).str("name")] = asObject(v)
	}
	mounts := map[string]string{} // mount path → folder
	for _, m := range ctr.dig("volumeMounts").([]any) {
		m := asObject(m)
		v, dir := volumes[m.str("name")], t.TempDir()
		var data map[string]string
		switch {
		case v.dig("secret") != nil:
			secret := r.get(t, "Secret/"+v.str("secret", "secretName"))
			data = map[string]string{}
			for k, b64 := range asObject(secret.dig("data")) {
				b, err := base64.StdEncoding.DecodeString(fmt.Sprint(b64))
				if err != nil {
					t.Fatalf("%s: key %s: %v", secret.id(), k, err)
				}
				data[k] = string(b)
			}
		case v.dig("configMap") != nil:
			data = map[string]string{}
			for k, s := range asObject(r.get(t, "ConfigMap/"+v.str("configMap", "name")).dig("data")) {
				data[k] = fmt.Sprint(s)
			}
		case v.dig("emptyDir") != nil:
		default:
			t.Fatalf("volume %s: a kind the test cannot make a folder of: %v", m.str("name"), v)
		}
		for k, s := range data {
			writeFile(t, filepath.Join(dir, k), []byte(s))
		}
		mounts[m.str("mountPath")] = dir
	}

	// The arguments.
	args := containerArgs(t, r)
	ports := map[string]string{} // the container's port → the process's
	var replaced []string
	for i, a := range args {
		name, value, _ := strings.Cut(a, "=")
		switch name {
		case "--listen", "--metrics-listen":
			addr := httpsAddr
			if name == "--metrics-listen" {
				addr = metricsAddr
			}
			_, from, _ := net.SplitHostPort(value)
			_, to, _ := net.SplitHostPort(addr)
			ports[from] = to
			args[i] = name + "=" + addr
		default:
			for path, dir := range mounts {
				if rest, ok := strings.CutPrefix(value, path+"/"); ok {
					args[i] = name + "=" + filepath.Join(dir, rest)
				}
			}
			if args[i] == a && strings.HasPrefix(value, "/") {
				t.Fatalf("argument %s names a file in no mounted volume", a)
			}
		}
		if args[i] != a {
			replaced = append(replaced, a+" → "+args[i])
		}
	}
	if len(ports) != 2 {
		t.Fatalf("vouch's listen arguments: %v", args)
	}
	if ctr.dig("command") != nil {
		t.Fatalf("the container has a command (%v): the test runs the image's entry point, vouch", ctr.dig("command"))
	}
	kubeconfig := filepath.Join(t.TempDir(), "vouch.kubeconfig")
	writeFile(t, kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, certificate-authority: %q}
users:
- name: vouch
  user:
    client-certificate: %q
    client-key: %q
    as: %q
    as-groups: %s
contexts:
- name: vouch
  context: {cluster: e2e, user: vouch}
current-context: vouch
`, c.server, pki.file("ca.crt"), c.adminCert, c.adminKey, chartSA, mustJSON(t, chartSAGroups))))
	args = append(args, "--kubeconfig="+kubeconfig)
	replaced = append(replaced, "(in-cluster configuration) → --kubeconfig impersonating "+chartSA)

	// The environment.
	var env []string
	for _, e := range ctr.dig("env").([]any) {
		e := asObject(e)
		switch {
		case e.dig("value") != nil:
			env = append(env, e.str("name")+"="+e.str("value"))
		case e.str("valueFrom", "fieldRef", "fieldPath") == "metadata.namespace":
			env = append(env, e.str("name")+"="+releaseNamespace)
			replaced = append(replaced, "$"+e.str("name")+" (Downward API) → "+releaseNamespace)
		default:
			t.Fatalf("environment variable %s: a source the test does not resolve: %v", e.str("name"), e["valueFrom"])
		}
	}
	t.Logf("vouch %s\n  environment %v\n  replaced: %s", strings.Join(args, " "), env, strings.Join(replaced, "; "))

	envBin, err := exec.LookPath("env")
	if err != nil {
		t.Fatal(err)
	}
	v := &vouchServer{addr: httpsAddr, metricsAddr: metricsAddr}
	v.proc = start(t, logDir, "vouch-chart", nil, syscall.SIGTERM, envBin, append(append(append([]string{"-i"}, env...), bin), args...)...)

	// The Service's EndpointSlice: its ports by name, to the container's
	// ports they target, to the process's.
	svc := r.get(t, "Service/vouch")
	ctrPorts := map[string]string{}
	for _, p := range ctr.dig("ports").([]any) {
		ctrPorts[asObject(p).str("name")] = fmt.Sprint(asObject(p).dig("containerPort"))
	}
	var slicePorts strings.Builder
	for _, p := range svc.dig("spec", "ports").([]any) {
		p := asObject(p)
		to, ok := ports[ctrPorts[p.str("targetPort")]]
		if !ok {
			t.Fatalf("the Service's port %s targets %s, which vouch does not listen on", p.str("name"), p.str("targetPort"))
		}
		fmt.Fprintf(&slicePorts, "  - {name: %s, port: %s, protocol: TCP}\n", p.str("name"), to)
	}
	slice := fmt.Sprintf(`apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %[1]s-process
  namespace: %[2]s
  labels: {kubernetes.io/service-name: %[1]s}
addressType: FQDN
endpoints:
  - addresses: [%[3]s]
    conditions: {ready: true}
ports:
%[4]s`, svc.str("metadata", "name"), releaseNamespace, chartPodHost, slicePorts.String())
	c.mustKubectl(t, slice, "apply", "-f", "-")
	t.Cleanup(func() {
		if out, err := c.kubectl(slice, "delete", "--ignore-not-found", "-f", "-"); err != nil {
			t.Errorf("deleting the EndpointSlice: %v\n%s", err, out)
		}
	})

	plain := &http.Client{Timeout: 2 * time.Second}
	testbed.WaitFor(t, "vouch ready", 60*time.Second, v.proc, func() error { return testbed.HTTPReady(plain, "http://"+metricsAddr+"/readyz") })
	return v
}

// checkChartRBAC asks the API server (kubectl auth can-i, as the release's
// ServiceAccount and its groups) what the chart's RBAC lets vouch do: what
// vouch serve --kubernetes needs, and not more.
func checkChartRBAC(t *testing.T, c *cluster) {
	t.Helper()
	as := []string{"--as", chartSA}
	for _, g := range chartSAGroups {
		as = append(as, "--as-group", g)
	}
	ns := releaseNamespace
	for _, tc := range []struct {
		allowed bool
		args    []string
	}{
		// What vouch needs: its ClusterVouchConfig, its status; the
		// tenants' VouchConfigs and their statuses; the trust its
		// configuration names.
		{true, []string{"get", "clustervouchconfigs.config.vouch.dev/vouch"}},
		{true, []string{"watch", "clustervouchconfigs.config.vouch.dev/vouch"}},
		{true, []string{"patch", "clustervouchconfigs.config.vouch.dev/vouch", "--subresource", "status"}},
		{true, []string{"list", "vouchconfigs.config.vouch.dev", "--all-namespaces"}},
		{true, []string{"watch", "vouchconfigs.config.vouch.dev", "--all-namespaces"}},
		{true, []string{"patch", "vouchconfigs.config.vouch.dev", "--subresource", "status", "-n", "native"}},
		{true, []string{"get", "secrets/notation-ca", "-n", ns}},
		{true, []string{"watch", "secrets/notation-ca", "-n", ns}},
		{true, []string{"get", "configmaps/notation-trust-policy", "-n", ns}},
		{true, []string{"watch", "configmaps/notation-trust-policy", "-n", ns}},
		// No other Secret or ConfigMap: not its own TLS key (mounted,
		// never read through the API), not a neighbour's, not by list.
		{false, []string{"get", "secrets/vouch-tls", "-n", ns}},
		{false, []string{"get", "secrets/unrelated", "-n", ns}},
		{false, []string{"list", "secrets", "-n", ns}},
		{false, []string{"watch", "secrets", "-n", ns}},
		{false, []string{"get", "secrets/notation-ca", "-n", "native"}},
		{false, []string{"list", "secrets", "--all-namespaces"}},
		{false, []string{"get", "configmaps/other", "-n", ns}},
		{false, []string{"list", "configmaps", "-n", ns}},
		{false, []string{"get", "serviceaccounts/vouch", "-n", ns}},
		// No write but the statuses.
		{false, []string{"update", "secrets/notation-ca", "-n", ns}},
		{false, []string{"patch", "configmaps/notation-trust-policy", "-n", ns}},
		{false, []string{"create", "secrets", "-n", ns}},
		{false, []string{"update", "clustervouchconfigs.config.vouch.dev/vouch"}},
		{false, []string{"patch", "clustervouchconfigs.config.vouch.dev/vouch"}},
		{false, []string{"delete", "clustervouchconfigs.config.vouch.dev/vouch"}},
		{false, []string{"create", "clustervouchconfigs.config.vouch.dev"}},
		{false, []string{"get", "clustervouchconfigs.config.vouch.dev/other"}},
		{false, []string{"list", "clustervouchconfigs.config.vouch.dev"}},
		{false, []string{"patch", "clustervouchconfigs.config.vouch.dev/other", "--subresource", "status"}},
		{false, []string{"patch", "vouchconfigs.config.vouch.dev", "-n", "native"}},
		{false, []string{"create", "vouchconfigs.config.vouch.dev", "-n", "native"}},
		{false, []string{"delete", "vouchconfigs.config.vouch.dev", "-n", "native"}},
		{false, []string{"patch", "mutatingwebhookconfigurations/vouch"}},
		{false, []string{"delete", "validatingwebhookconfigurations/vouch"}},
		{false, []string{"patch", "providers.externaldata.gatekeeper.sh/vouch"}},
		{false, []string{"create", "pods", "-n", "native"}},
		{false, []string{"list", "pods", "--all-namespaces"}},
		{false, []string{"create", "serviceaccounts/vouch", "--subresource", "token", "-n", ns}},
		{false, []string{"impersonate", "users"}},
		{false, []string{"escalate", "clusterroles"}},
		{false, []string{"bind", "clusterroles"}},
		{false, []string{"create", "events", "-n", ns}},
	} {
		out, err := c.kubectl("", append(append([]string{"auth", "can-i"}, tc.args...), as...)...)
		// The answer is the last line, after kubectl's warnings.
		lines := strings.Split(strings.TrimSpace(out), "\n")
		got := lines[len(lines)-1]
		if (got == "yes") != tc.allowed || (err == nil) != tc.allowed {
			t.Errorf("kubectl auth can-i %s as %s: %q (%v), want allowed=%v", strings.Join(tc.args, " "), chartSA, got, err, tc.allowed)
		}
	}
	t.Logf("kubectl auth can-i --list as %s in %s:\n%s", chartSA, ns, c.mustKubectl(t, "", append([]string{"auth", "can-i", "--list", "-n", ns}, as...)...))
}

// auditEvent is what checkChartAudit reads of an audit event
// (audit.k8s.io/v1 Event).
type auditEvent struct {
	Stage            string `json:"stage"`
	Verb             string `json:"verb"`
	ImpersonatedUser *struct {
		Username string `json:"username"`
	} `json:"impersonatedUser"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		APIGroup    string `json:"apiGroup"`
	} `json:"objectRef"`
	RequestURI     string `json:"requestURI"`
	UserAgent      string `json:"userAgent"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// checkChartAudit reads the API server's audit log: every request vouch
// made as the release's ServiceAccount was allowed, and vouch made the
// requests that show each of its needs at work.
func checkChartAudit(t *testing.T, path string) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	used, forbidden := map[string]int{}, map[string]int{}
	refused := 0
	for sc.Scan() {
		var ev auditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("the audit log: %v", err)
		}
		// vouch's client says "vouch" (kube.RESTConfig); kubectl auth
		// can-i, as the ServiceAccount too, is the test's.
		if ev.ImpersonatedUser == nil || ev.ImpersonatedUser.Username != chartSA || ev.Stage != "ResponseComplete" || ev.ObjectRef == nil ||
			!strings.HasPrefix(ev.UserAgent, "vouch") {
			continue
		}
		res := ev.ObjectRef.Resource
		if ev.ObjectRef.APIGroup != "" {
			res += "." + ev.ObjectRef.APIGroup
		}
		if ev.ObjectRef.Subresource != "" {
			res += "/" + ev.ObjectRef.Subresource
		}
		where := ev.ObjectRef.Name
		if ev.ObjectRef.Namespace != "" {
			where = ev.ObjectRef.Namespace + "/" + where
		}
		used[ev.Verb+" "+res+" "+where]++
		if ev.ResponseStatus != nil && ev.ResponseStatus.Code == http.StatusForbidden {
			refused++
			forbidden[ev.Verb+" "+ev.RequestURI]++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for req, n := range forbidden {
		t.Errorf("the API server refused vouch (as %s) %d times: %s", chartSA, n, req)
	}
	var lines []string
	for k, n := range used {
		lines = append(lines, fmt.Sprintf("%s ×%d", k, n))
	}
	slices.Sort(lines)
	t.Logf("requests of %s (verb resource namespace/name), %d refused:\n%s", chartSA, refused, strings.Join(lines, "\n"))
	for _, want := range []string{
		"get clustervouchconfigs.config.vouch.dev vouch",
		"watch clustervouchconfigs.config.vouch.dev vouch",
		"patch clustervouchconfigs.config.vouch.dev/status vouch",
		"list vouchconfigs.config.vouch.dev ",
		"watch vouchconfigs.config.vouch.dev ",
		"patch vouchconfigs.config.vouch.dev/status team-b/team-b",
		"get secrets " + releaseNamespace + "/notation-ca",
		"watch secrets " + releaseNamespace + "/notation-ca",
		"get configmaps " + releaseNamespace + "/notation-trust-policy",
		"watch configmaps " + releaseNamespace + "/notation-trust-policy",
	} {
		if used[want] == 0 {
			t.Errorf("vouch never made the request %q", want)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
