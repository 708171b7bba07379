//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/internal/testbed/testca"
)

// clusterBin returns the path of a program that hack/cluster.sh builds,
// failing the test with a hint when it is missing.
func clusterBin(t *testing.T, name string) string {
	t.Helper()
	path, err := testbed.LookBin(name)
	if err != nil {
		t.Fatalf("%v (hack/cluster.sh builds it; hack/test.sh runs it through hack/testbed.sh)", err)
	}
	return path
}

// start runs path with args, its output in logDir/name.log, until the test
// ends; then the process gets stopSignal (SIGKILL when nil), then SIGKILL
// after 10 s. When the test failed, the end of its log is printed.
func start(t *testing.T, logDir, name string, env []string, stopSignal os.Signal, path string, args ...string) *testbed.Process {
	t.Helper()
	return testbed.Launch(t, testbed.ProcessOptions{Name: name, Path: path, Args: args, Env: env,
		LogFile: filepath.Join(logDir, name+".log"), StopSignal: stopSignal})
}

// ca is the certificate authority of vouch serve --generate-tls, used to
// issue the test's other certificates: the cluster admin's, Gatekeeper's.
type ca struct {
	*testca.CA
	dir string // where --generate-tls wrote ca.crt, tls.crt, ...
}

func (c *ca) file(name string) string { return filepath.Join(c.dir, name) }

// loadCA reads ca.crt and ca.key from dir.
func loadCA(t *testing.T, dir string) *ca {
	t.Helper()
	c, err := testca.Load(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	return &ca{CA: c, dir: dir}
}

// issue writes certName and keyName into dir: a certificate from the CA
// for subject with the given key usages, valid for 127.0.0.1.
func (c *ca) issue(t *testing.T, dir, certName, keyName string, subject pkix.Name, usages ...x509.ExtKeyUsage) {
	t.Helper()
	cert, err := c.TLS(subject, usages...)
	if err == nil {
		err = cert.WriteFiles(filepath.Join(dir, certName), filepath.Join(dir, keyName))
	}
	if err != nil {
		t.Fatal(err)
	}
}

// tlsClient returns an HTTP client that trusts the CA and presents the
// certificate in certFile/keyFile (when not empty).
func (c *ca) tlsClient(t *testing.T, certFile, keyFile string) *http.Client {
	t.Helper()
	var client *testca.Cert
	if certFile != "" {
		var err error
		if client, err = testca.LoadCert(certFile, keyFile); err != nil {
			t.Fatal(err)
		}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: c.ClientConfig(client)}}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// cluster is etcd and kube-apiserver on 127.0.0.1, and kubectl configured
// as an administrator (a client certificate in group system:masters).
type cluster struct {
	kubectlPath string
	kubeconfig  string
	server      string // https://127.0.0.1:PORT
	apiserver   *testbed.Process
	// The administrator's client certificate and key, for kubeconfigs
	// that impersonate someone else.
	adminCert, adminKey string
}

// clusterOptions change how startClusterWith runs kube-apiserver.
type clusterOptions struct {
	// apiserverArgs are more flags of kube-apiserver. Optional.
	apiserverArgs []string
	// hosts, when set, is the /etc/hosts that kube-apiserver sees
	// (privateHosts). Optional.
	hosts string
}

// startCluster starts etcd and kube-apiserver with its admission webhooks
// enabled, and waits until the API server is ready.
func startCluster(t *testing.T, pki *ca, logDir string) *cluster {
	t.Helper()
	return startClusterWith(t, pki, logDir, clusterOptions{})
}

// startClusterWith is startCluster with options.
func startClusterWith(t *testing.T, pki *ca, logDir string, o clusterOptions) *cluster {
	t.Helper()
	etcdBin := clusterBin(t, "etcd")
	apiserverBin := clusterBin(t, "kube-apiserver")
	c := &cluster{kubectlPath: clusterBin(t, "kubectl")}
	dir := t.TempDir()

	clientAddr, peerAddr := testbed.FreeAddr(t), testbed.FreeAddr(t)
	etcd := start(t, logDir, "etcd", nil, nil, etcdBin,
		"--name", "e2e", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://"+clientAddr, "--advertise-client-urls", "http://"+clientAddr,
		"--listen-peer-urls", "http://"+peerAddr, "--initial-advertise-peer-urls", "http://"+peerAddr,
		"--initial-cluster", "e2e=http://"+peerAddr,
		"--unsafe-no-fsync", "--log-level", "warn")
	plain := &http.Client{Timeout: 2 * time.Second}
	testbed.WaitFor(t, "etcd healthy", 30*time.Second, etcd, func() error { return testbed.HTTPReady(plain, "http://"+clientAddr+"/health") })

	// The service-account token signer: an API server refuses to start
	// without one.
	saFile, saPubFile := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	sa, err := testca.NewKeyPair()
	if err == nil {
		err = sa.WriteFiles(saFile, saPubFile)
	}
	if err != nil {
		t.Fatal(err)
	}
	// The administrator: a client certificate in group system:masters.
	pki.issue(t, dir, "admin.crt", "admin.key", pkix.Name{CommonName: "e2e-admin", Organization: []string{"system:masters"}}, x509.ExtKeyUsageClientAuth)

	addr := testbed.FreeAddr(t)
	c.server = "https://" + addr
	_, port, _ := net.SplitHostPort(addr)
	apiserverArgs := append([]string{"--etcd-servers", "http://" + clientAddr,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", port,
		"--tls-cert-file", pki.file("tls.crt"), "--tls-private-key-file", pki.file("tls.key"),
		"--client-ca-file", pki.file("ca.crt"),
		"--authorization-mode", "RBAC",
		"--service-account-issuer", c.server, "--service-account-key-file", saPubFile, "--service-account-signing-key-file", saFile,
		"--service-cluster-ip-range", "10.0.0.0/24",
		// No controller manager makes the default service account: the
		// ServiceAccount admission plugin would refuse every Pod.
		"--enable-admission-plugins", "NamespaceLifecycle,MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
		"--disable-admission-plugins", "ServiceAccount",
		"--endpoint-reconciler-type", "none",
		"--cert-dir", filepath.Join(dir, "apiserver-certs")}, o.apiserverArgs...)
	path := apiserverBin
	if o.hosts != "" {
		path, apiserverArgs = privateHosts(t, o.hosts, path, apiserverArgs...)
	}
	c.apiserver = start(t, logDir, "kube-apiserver", nil, nil, path, apiserverArgs...)
	c.adminCert, c.adminKey = filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key")
	admin := pki.tlsClient(t, filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key"))
	testbed.WaitFor(t, "kube-apiserver ready", 90*time.Second, c.apiserver, func() error { return testbed.HTTPReady(admin, c.server+"/readyz") })

	c.kubeconfig = filepath.Join(dir, "kubeconfig")
	writeFile(t, c.kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster: {server: %q, certificate-authority: %q}
users:
- name: admin
  user: {client-certificate: %q, client-key: %q}
contexts:
- name: e2e
  context: {cluster: e2e, user: admin}
current-context: e2e
`, c.server, pki.file("ca.crt"), filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key"))))
	return c
}

// privateHosts returns the command that runs path with args in a mount
// namespace of its own, where /etc/hosts is the file hosts (bound over it;
// the machine's /etc/hosts is untouched). It stands in for a cluster's
// DNS, which resolves Service names for the processes that run in pods.
// unshare execs sh, which execs path: the process id stays the program's.
// It needs root (CAP_SYS_ADMIN), as on the testbed's machines.
func privateHosts(t *testing.T, hosts, path string, args ...string) (string, []string) {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("unshare (util-linux), which runs a process with its own /etc/hosts: %v", err)
	}
	if out, err := exec.Command(unshare, "--mount", "--", "/bin/sh", "-c", `mount --bind "$0" /etc/hosts`, hosts).CombinedOutput(); err != nil {
		t.Fatalf("cannot give a process its own /etc/hosts (unshare --mount and mount --bind need root): %v\n%s", err, out)
	}
	return unshare, append([]string{"--mount", "--", "/bin/sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`, hosts, path}, args...)
}

// kubectl runs kubectl with stdin (when not empty) and returns its
// combined output.
func (c *cluster) kubectl(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.kubectlPath, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timed out: %w", err)
	}
	return out.String(), err
}

// mustKubectl is kubectl that fails the test when kubectl fails.
func (c *cluster) mustKubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := c.kubectl(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// jsonpath returns a field of an object, or an error (the object may not
// exist yet).
func (c *cluster) jsonpath(path string, args ...string) (string, error) {
	out, err := c.kubectl("", append([]string{"get", "-o", "jsonpath=" + path}, args...)...)
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, strings.TrimSpace(out))
	}
	return out, nil
}
