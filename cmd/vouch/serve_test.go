package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vouch-project/vouch/internal/testbed"
)

// lockedBuffer is a buffer the server logs to while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestServe runs `vouch serve` as a user would: certificates from
// --generate-tls, the quick --notation-cert flag, mutual TLS, a separate
// metrics listener; answers Gatekeeper's requests; stops on its context
// (SIGTERM in main) with exit code 0.
func TestServe(t *testing.T) {
	reg := testbed.GGCR(t, nil)
	signer := testbed.NewNotationSigner(t)
	p := testbed.NewPusher(t, reg.Host, "serve/app")
	signer.Sign(p, p.Image("signed", "signed"))
	p.Image("unsigned", "unsigned")

	dir := t.TempDir()
	code, out, stderr := vouchRun(t, "serve", "--generate-tls", dir, "--tls-dns-name", "vouch.example")
	if code != 0 || !strings.Contains(out, "wrote ca.crt") {
		t.Fatalf("--generate-tls: exit %d\n%s%s", code, out, stderr)
	}
	if code, _, stderr := vouchRun(t, "serve"); code != exitUsage || !strings.Contains(stderr, "--tls-cert-file") {
		t.Fatalf("serve without certificates: exit %d: %s", code, stderr)
	}
	if code, _, stderr := vouchRun(t, "serve", "--tls-cert-file", "x", "--tls-key-file", "y", "--username", "u", "--password-stdin"); code != exitUsage || !strings.Contains(stderr, "--registry-config") {
		t.Fatalf("serve with --username: exit %d: %s", code, stderr)
	}

	addr := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &lockedBuffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"serve", "--listen", addr, "--metrics-listen", metricsAddr,
			"--tls-cert-file", filepath.Join(dir, "tls.crt"), "--tls-key-file", filepath.Join(dir, "tls.key"),
			"--client-ca-file", filepath.Join(dir, "ca.crt"),
			"--notation-cert", signer.CAFile, "--plain-http", "--allow-internal-registry", "127.0.0.1", "--gatekeeper-graph", "--tag-max-stale", "1m", "--linger", "0"}, strings.NewReader(""), &bytes.Buffer{}, logs)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + metricsAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("vouch serve did not become ready: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	pool.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	body := fmt.Sprintf(`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":["%[1]s/serve/app:signed","%[1]s/serve/app:unsigned"]}}`, reg.Host)
	resp, err := client.Post("https://"+addr+"/ratify/gatekeeper/v1/verify", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	var answer struct {
		Response struct {
			Items []struct {
				Key   string `json:"key"`
				Value struct {
					IsSuccess bool            `json:"isSuccess"`
					Reason    string          `json:"reason"`
					Graph     json.RawMessage `json:"graph"`
				} `json:"value"`
			} `json:"items"`
		} `json:"response"`
	}
	err = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if err != nil || len(answer.Response.Items) != 2 || !answer.Response.Items[0].Value.IsSuccess || answer.Response.Items[1].Value.IsSuccess {
		t.Fatalf("answer %+v, %v", answer, err)
	}
	if len(answer.Response.Items[0].Value.Graph) == 0 {
		t.Fatalf("--gatekeeper-graph: the value has no graph: %+v", answer)
	}
	metrics, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var m bytes.Buffer
	m.ReadFrom(metrics.Body)
	metrics.Body.Close()
	for _, want := range []string{`vouch_registry_requests_total{code="200",host="` + reg.Host + `",method="GET"}`, `vouch_verifier_duration_seconds_count{outcome="passed",verifier="notation"} 1`} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit %d after SIGTERM\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("vouch serve did not stop")
	}
	for _, want := range []string{`"msg":"vouch serving"`, `"msg":"request"`, `"msg":"vouch stopped"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s:\n%s", want, logs.String())
		}
	}
}

// TestServeKubernetesFlags: the Kubernetes source's flags are checked
// before anything starts.
func TestServeKubernetesFlags(t *testing.T) {
	tls := []string{"--tls-cert-file", "x", "--tls-key-file", "y"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--kubernetes", "--config", "vouch.yaml"}, "--kubernetes and --config exclude each other"},
		{[]string{"--kubernetes", "--notation-cert", "ca.pem"}, "--kubernetes excludes --notation-cert"},
		{[]string{"--kubeconfig", "kc"}, "need --kubernetes"},
		{[]string{"--kubernetes", "--config-reload-interval", "0"}, "--kubernetes needs a positive --config-reload-interval"},
	} {
		code, _, stderr := vouchRun(t, append(append([]string{"serve"}, tls...), tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("serve %s: exit %d: %s\nwant %q", strings.Join(tc.args, " "), code, stderr, tc.want)
		}
	}
}
