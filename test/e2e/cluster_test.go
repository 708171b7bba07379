//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vouch-project/vouch/internal/testbed"
)

// clusterBin returns the path of a program that hack/cluster.sh builds,
// failing the test with a hint when it is missing.
func clusterBin(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(testbed.BinDir(), name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing (%v): run hack/cluster.sh (hack/test.sh runs it through hack/testbed.sh)", name, err)
	}
	return path
}

// process is a program the test started; it is killed by its PID when the
// test ends.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

// start runs path with args, its output in logDir/name.log. When the test
// ends the process gets stopSignal (SIGKILL when nil), then SIGKILL after
// 10 s; when the test failed, the end of its log is printed.
func start(t *testing.T, logDir, name string, env []string, stopSignal os.Signal, path string, args ...string) *process {
	t.Helper()
	p := &process{name: name, logPath: filepath.Join(logDir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p.cmd = exec.Command(path, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	// Should the test binary die before its cleanups run, the kernel
	// kills the children.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if stopSignal == nil {
			stopSignal = os.Kill
		}
		_ = p.cmd.Process.Signal(stopSignal)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("--- end of %s's log (%s):\n%s", name, p.logPath, tail(p.logPath, 6000))
		}
	})
	return p
}

// exited reports an error when the process is no longer running.
func (p *process) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v; end of its log:\n%s", p.name, p.err, tail(p.logPath, 4000))
	default:
		return nil
	}
}

// tail returns the last n bytes of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// waitFor calls check every 200 ms until it returns nil, p (when not nil)
// exits, or timeout passes; then the test fails with what check said last.
func waitFor(t *testing.T, what string, timeout time.Duration, p *process, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if p != nil {
			if perr := p.exited(); perr != nil {
				t.Fatalf("waiting for %s: %v", what, perr)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// httpOK returns nil when GET url answers 200.
func httpOK(client *http.Client, url string) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// hostPort is "127.0.0.1:PORT" on a port that was free a moment ago.
func hostPort(t *testing.T) string {
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(testbed.FreePort(t)))
}

// ca is the certificate authority of vouch serve --generate-tls, used to
// issue the test's other certificates: the cluster admin's, Gatekeeper's.
type ca struct {
	dir  string // where --generate-tls wrote ca.crt, tls.crt, ...
	cert *x509.Certificate
	key  crypto.Signer
}

func (c *ca) file(name string) string { return filepath.Join(c.dir, name) }

// loadCA reads ca.crt and ca.key from dir.
func loadCA(t *testing.T, dir string) *ca {
	t.Helper()
	c := &ca{dir: dir}
	certPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	if c.cert, err = x509.ParseCertificate(block.Bytes); err != nil {
		t.Fatal(err)
	}
	block, _ = pem.Decode(keyPEM)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	c.key = key.(crypto.Signer)
	return c
}

// issue writes certName and keyName into dir: a certificate from the CA
// for subject with the given key usages, valid for 127.0.0.1.
func (c *ca) issue(t *testing.T, dir, certName, keyName string, subject pkix.Name, usages ...x509.ExtKeyUsage) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usages,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, filepath.Join(dir, keyName), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// tlsClient returns an HTTP client that trusts the CA and presents the
// certificate in certFile/keyFile (when not empty).
func (c *ca) tlsClient(t *testing.T, certFile, keyFile string) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(c.cert)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
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
	apiserver   *process
}

// startCluster starts etcd and kube-apiserver with its admission webhooks
// enabled, and waits until the API server is ready.
func startCluster(t *testing.T, pki *ca, logDir string) *cluster {
	t.Helper()
	etcdBin := clusterBin(t, "etcd")
	apiserverBin := clusterBin(t, "kube-apiserver")
	c := &cluster{kubectlPath: clusterBin(t, "kubectl")}
	dir := t.TempDir()

	clientAddr, peerAddr := hostPort(t), hostPort(t)
	etcd := start(t, logDir, "etcd", nil, nil, etcdBin,
		"--name", "e2e", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", "http://"+clientAddr, "--advertise-client-urls", "http://"+clientAddr,
		"--listen-peer-urls", "http://"+peerAddr, "--initial-advertise-peer-urls", "http://"+peerAddr,
		"--initial-cluster", "e2e=http://"+peerAddr,
		"--unsafe-no-fsync", "--log-level", "warn")
	plain := &http.Client{Timeout: 2 * time.Second}
	waitFor(t, "etcd healthy", 30*time.Second, etcd, func() error { return httpOK(plain, "http://"+clientAddr+"/health") })

	// The service-account token signer: an API server refuses to start
	// without one.
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	saDER, err := x509.MarshalPKCS8PrivateKey(saKey)
	if err != nil {
		t.Fatal(err)
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	saFile, saPubFile := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	writeFile(t, saFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: saDER}))
	writeFile(t, saPubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}))
	// The administrator: a client certificate in group system:masters.
	pki.issue(t, dir, "admin.crt", "admin.key", pkix.Name{CommonName: "e2e-admin", Organization: []string{"system:masters"}}, x509.ExtKeyUsageClientAuth)

	addr := hostPort(t)
	c.server = "https://" + addr
	_, port, _ := net.SplitHostPort(addr)
	c.apiserver = start(t, logDir, "kube-apiserver", nil, nil, apiserverBin,
		"--etcd-servers", "http://"+clientAddr,
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
		"--cert-dir", filepath.Join(dir, "apiserver-certs"))
	admin := pki.tlsClient(t, filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key"))
	waitFor(t, "kube-apiserver ready", 90*time.Second, c.apiserver, func() error { return httpOK(admin, c.server+"/readyz") })

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
