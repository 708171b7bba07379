package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/server"
)

// reloadBed is a registry with two images, "one" signed under CA1 and
// "two" signed under CA2 (real Notary Project signatures), and the PEM of
// both CAs.
type reloadBed struct {
	host     string
	ca1, ca2 []byte
}

func newReloadBed(t *testing.T) *reloadBed {
	t.Helper()
	reg := testbed.GGCR(t, nil)
	s1, s2 := testbed.NewNotationSigner(t), testbed.NewNotationSigner(t)
	p := testbed.NewPusher(t, reg.Host, "reload/app")
	s1.Sign(p, p.Image("one", "one"))
	s2.Sign(p, p.Image("two", "two"))
	return &reloadBed{host: reg.Host, ca1: readFile(t, s1.CAFile), ca2: readFile(t, s2.CAFile)}
}

func (b *reloadBed) image(tag string) string { return b.host + "/reload/app:" + tag }

// configFiles are the files of one configuration: vouch.yaml with a
// notation verifier named verifier, its trust policy, and ca.pem.
func configFiles(verifier string, ca []byte) map[string][]byte {
	return map[string][]byte{
		"vouch.yaml": []byte(`version: v1
trustStores:
  - name: ca:test
    files: [ca.pem]
verifiers:
  - name: ` + verifier + `
    type: notation
    notation:
      trustPolicy: trustpolicy.json
`),
		"trustpolicy.json": []byte(`{"version": "1.0", "trustPolicies": [{"name": "all", "registryScopes": ["*"],
  "signatureVerification": {"level": "strict"}, "trustStores": ["ca:test"], "trustedIdentities": ["*"]}]}`),
		"ca.pem": ca,
	}
}

// writeAtomic replaces path's content at once, as editors and
// `kubectl cp` do not, but tools that care do (rename over the file).
func writeAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// served is a `vouch serve` running in the test's process.
type served struct {
	url, metrics string
	client       *http.Client
	logs         *lockedBuffer
}

// startServe runs `vouch serve` with args (plus TLS and listeners) until
// the test ends, and waits for it to be ready.
func startServe(t *testing.T, args ...string) *served {
	t.Helper()
	s := launchServe(t, args...)
	s.waitReady(t)
	return s
}

// launchServe runs `vouch serve` with args (plus TLS and listeners) until
// the test ends, without waiting for it to be ready.
func launchServe(t *testing.T, args ...string) *served {
	t.Helper()
	dir := t.TempDir()
	if err := server.GenerateTLS(dir, nil); err != nil {
		t.Fatal(err)
	}
	addr, metricsAddr := testbed.FreeAddr(t), testbed.FreeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &lockedBuffer{}
	exit := make(chan int, 1)
	if !slices.Contains(args, "--allow-internal-registry") {
		args = append(args, "--allow-internal-registry", "127.0.0.1") // the testbed's registries
	}
	args = append([]string{"serve", "--listen", addr, "--metrics-listen", metricsAddr, "--plain-http",
		"--tls-cert-file", filepath.Join(dir, server.CertFile), "--tls-key-file", filepath.Join(dir, server.KeyFile)}, args...)
	go func() { exit <- run(ctx, args, strings.NewReader(""), &bytes.Buffer{}, logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-exit:
			if code != 0 {
				t.Errorf("vouch serve exited %d\n%s", code, logs.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("vouch serve did not stop")
		}
	})
	s := &served{url: "https://" + addr, metrics: "http://" + metricsAddr, logs: logs}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(readFile(t, filepath.Join(dir, server.CAFile)))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	s.client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return s
}

// waitReady waits until /readyz says ready.
func (s *served) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.readyz() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("vouch serve did not become ready\n%s", s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *served) readyz() int {
	resp, err := http.Get(s.metrics + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metric returns the value of the sample named series ("name{labels}")
// in /metrics, 0 when absent.
func (s *served) metric(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get(s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(data)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// answer is one Gatekeeper item as the tests read it: the verdict, and
// the verifiers whose results are in its graph.
type answer struct {
	key, err  string
	allowed   bool
	verifiers map[string]bool
}

// verify asks the Gatekeeper provider about images, with the graph.
func (s *served) verify(images ...string) ([]answer, error) {
	keys, _ := json.Marshal(images)
	body := `{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":` + string(keys) + `}}`
	resp, err := s.client.Post(s.url+"/gatekeeper/v1/verify?graph=true", "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	var out struct {
		Response struct {
			SystemError string `json:"systemError"`
			Items       []struct {
				Key   string `json:"key"`
				Error string `json:"error"`
				Value struct {
					IsSuccess bool        `json:"isSuccess"`
					Graph     *vouch.Node `json:"graph"`
				} `json:"value"`
			} `json:"items"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if out.Response.SystemError != "" || len(out.Response.Items) != len(images) {
		return nil, fmt.Errorf("answer %+v", out.Response)
	}
	answers := make([]answer, len(images))
	for i, it := range out.Response.Items {
		a := answer{key: it.Key, err: it.Error, allowed: it.Value.IsSuccess, verifiers: map[string]bool{}}
		if it.Value.Graph != nil {
			it.Value.Graph.Walk(func(n *vouch.Node, _ int) {
				for _, r := range n.Results {
					a.verifiers[r.Verifier] = true
				}
			})
		}
		answers[i] = a
	}
	return answers, nil
}

// allowed asks about one image and says whether it is allowed.
func (s *served) allowed(t *testing.T, image string) bool {
	t.Helper()
	a, err := s.verify(image)
	if err != nil || a[0].err != "" {
		t.Fatalf("verify %s: %v %+v\n%s", image, err, a, s.logs.String())
	}
	return a[0].allowed
}

// waitFor asks about image until its verdict is allowed, within a generous
// deadline, and returns how long that took since since.
func (s *served) waitFor(t *testing.T, image string, allowed bool, since time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for s.allowed(t, image) != allowed {
		if time.Now().After(deadline) {
			t.Fatalf("%s still not allowed=%v after %v\n%s", image, allowed, time.Since(since), s.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(since)
}

// TestServeReloadTrust: the server trusts CA1; replacing the trust file
// with CA2's certificate is seen without a restart: the image signed under
// CA2 becomes allowed, and the one signed under CA1, allowed and cached a
// moment ago, is denied (no verdict of the old trust served under the
// new). The time from the write to the first verdict under the new trust
// is logged, with a short interval and the default one.
func TestServeReloadTrust(t *testing.T) {
	bed := newReloadBed(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"interval=100ms", []string{"--config-reload-interval", "100ms"}},
		{"interval=default", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range configFiles("notation", bed.ca1) {
				writeAtomic(t, filepath.Join(dir, name), data)
			}
			s := startServe(t, append([]string{"--config", filepath.Join(dir, "vouch.yaml")}, tc.args...)...)
			if !s.allowed(t, bed.image("one")) || s.allowed(t, bed.image("two")) {
				t.Fatal("under CA1: want one allowed, two denied")
			}
			before := s.metric(t, `vouch_config_last_reload_success_timestamp_seconds`)

			written := time.Now()
			writeAtomic(t, filepath.Join(dir, "ca.pem"), bed.ca2)
			latency := s.waitFor(t, bed.image("two"), true, written)
			t.Logf("reload latency (%s): %v from writing ca.pem to the first verdict under CA2", tc.name, latency.Round(time.Millisecond))
			if s.allowed(t, bed.image("one")) {
				t.Fatal("under CA2, the image signed under CA1 is still allowed: a verdict of the old trust was served")
			}
			if got := s.metric(t, `vouch_config_reloads_total{result="success"}`); got != 1 {
				t.Errorf("reloads success = %v, want 1", got)
			}
			if got := s.metric(t, `vouch_config_last_reload_success_timestamp_seconds`); got <= before {
				t.Errorf("last success timestamp %v, not after %v", got, before)
			}
			if !strings.Contains(s.logs.String(), `"msg":"configuration reloaded"`) {
				t.Errorf("no reload logged:\n%s", s.logs.String())
			}
		})
	}
}

// TestServeReloadInvalid: an invalid config file, then an invalid trust
// file, are rejected: the last good configuration keeps answering,
// /readyz stays 200, each failure is counted and logged once however many
// times the files are looked at, and a valid change is taken again.
func TestServeReloadInvalid(t *testing.T) {
	bed := newReloadBed(t)
	dir := t.TempDir()
	files := configFiles("notation", bed.ca1)
	for name, data := range files {
		writeAtomic(t, filepath.Join(dir, name), data)
	}
	s := startServe(t, "--config", filepath.Join(dir, "vouch.yaml"), "--config-reload-interval", "20ms")
	info := func() string {
		m := regexp.MustCompile(`vouch_config_info\{policy_hash="([0-9a-f]+)"\} 1`).FindStringSubmatch(s.metricsText(t))
		if m == nil {
			t.Fatal("no vouch_config_info")
		}
		return m[1]
	}
	hash := info()
	waitMetric := func(series string, want float64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for s.metric(t, series) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s = %v, want %v\n%s", series, s.metric(t, series), want, s.logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	check := func(what string) {
		t.Helper()
		if !s.allowed(t, bed.image("one")) || s.allowed(t, bed.image("two")) {
			t.Fatalf("%s: the last good configuration (CA1) does not answer", what)
		}
		if code := s.readyz(); code != http.StatusOK {
			t.Fatalf("%s: /readyz %d", what, code)
		}
		if got := info(); got != hash {
			t.Fatalf("%s: vouch_config_info %s, want %s", what, got, hash)
		}
	}

	writeAtomic(t, filepath.Join(dir, "vouch.yaml"), []byte("version: v2\n"))
	waitMetric(`vouch_config_reloads_total{result="failure"}`, 1)
	time.Sleep(200 * time.Millisecond) // ten more looks at the same broken file
	check("broken config")
	if got := s.metric(t, `vouch_config_reloads_total{result="failure"}`); got != 1 {
		t.Errorf("failures = %v after more looks at the same file, want 1", got)
	}
	if got := s.metric(t, `vouch_config_last_reload_successful`); got != 0 {
		t.Errorf("last reload successful = %v, want 0", got)
	}
	if n := strings.Count(s.logs.String(), "configuration change rejected"); n != 1 || !strings.Contains(s.logs.String(), `version: \"v2\" is not supported`) {
		t.Errorf("%d rejections logged, want 1 saying why:\n%s", n, s.logs.String())
	}

	// Back to the good config file, with a trust file that is not a
	// certificate: rejected too.
	writeAtomic(t, filepath.Join(dir, "ca.pem"), []byte("not a certificate\n"))
	writeAtomic(t, filepath.Join(dir, "vouch.yaml"), files["vouch.yaml"])
	waitMetric(`vouch_config_reloads_total{result="failure"}`, 2)
	check("broken trust file")

	writeAtomic(t, filepath.Join(dir, "ca.pem"), bed.ca2)
	waitMetric(`vouch_config_reloads_total{result="success"}`, 1)
	if !s.allowed(t, bed.image("two")) || s.allowed(t, bed.image("one")) {
		t.Fatal("under CA2: want two allowed, one denied")
	}
	if got := s.metric(t, `vouch_config_last_reload_successful`); got != 1 {
		t.Errorf("last reload successful = %v, want 1", got)
	}
}

func (s *served) metricsText(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(s.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return string(data)
}

// kubeDir writes configurations the way the kubelet updates a mounted
// ConfigMap or Secret: the files of each version in a new folder, the
// folder named by the symbolic link ..data, swapped by a rename, and each
// file a symbolic link through ..data; the previous folder is removed.
type kubeDir struct {
	t    *testing.T
	dir  string
	n    int
	prev string
}

func (k *kubeDir) write(files map[string][]byte) {
	k.t.Helper()
	k.n++
	version := fmt.Sprintf("..v%d", k.n)
	if err := os.Mkdir(filepath.Join(k.dir, version), 0o755); err != nil {
		k.t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(k.dir, version, name), data, 0o644); err != nil {
			k.t.Fatal(err)
		}
	}
	tmp := filepath.Join(k.dir, "..data_tmp")
	if err := os.Symlink(version, tmp); err != nil {
		k.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, "..data")); err != nil {
		k.t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(k.dir, name)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				k.t.Fatal(err)
			}
		}
	}
	if k.prev != "" {
		if err := os.RemoveAll(filepath.Join(k.dir, k.prev)); err != nil {
			k.t.Fatal(err)
		}
	}
	k.prev = version
}

// TestServeReloadChurn: hundreds of updates, written as the kubelet
// writes them, alternate between configuration A (verifier "trust-a",
// trusting CA1) and B ("trust-b", trusting CA2), looked at every 10ms,
// while concurrent Gatekeeper requests ask about both images. No request
// fails, and every answer is whole: both images of a request are decided
// by the same configuration, and under A "one" is allowed and "two"
// denied, under B the reverse; a verdict from one configuration's verifier
// name with the other's trust would be a half-applied configuration.
func TestServeReloadChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("churn under load")
	}
	bed := newReloadBed(t)
	a, b := configFiles("trust-a", bed.ca1), configFiles("trust-b", bed.ca2)
	k := &kubeDir{t: t, dir: t.TempDir()}
	k.write(a)
	s := startServe(t, "--config", filepath.Join(k.dir, "vouch.yaml"), "--config-reload-interval", "10ms")
	one, two := bed.image("one"), bed.image("two")

	var (
		stop            atomic.Bool
		requests, seenA atomic.Int64
		seenB           atomic.Int64
		mu              sync.Mutex
		problems        []string
		wg              sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 10 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				answers, err := s.verify(one, two)
				requests.Add(1)
				if err != nil {
					fail("request: %v", err)
					continue
				}
				x, y := answers[0], answers[1]
				switch {
				case x.err != "" || y.err != "":
					fail("item errors: %q %q", x.err, y.err)
				case len(x.verifiers) != 1 || len(y.verifiers) != 1:
					fail("verifiers %v and %v: want one each", x.verifiers, y.verifiers)
				case x.verifiers["trust-a"] && y.verifiers["trust-a"] && x.allowed && !y.allowed:
					seenA.Add(1)
				case x.verifiers["trust-b"] && y.verifiers["trust-b"] && !x.allowed && y.allowed:
					seenB.Add(1)
				default:
					fail("half-applied answer: one allowed=%v by %v, two allowed=%v by %v", x.allowed, x.verifiers, y.allowed, y.verifiers)
				}
			}
		}()
	}

	// B serves once for sure; then the churn, ending with A.
	k.write(b)
	s.waitForGeneration(t, one, two, "trust-b")
	const updates = 300
	start := time.Now()
	for i := range updates {
		if i%2 == 0 {
			k.write(a)
		} else {
			k.write(b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	k.write(a)
	// Wait for the last update, A, to serve, then stop.
	s.waitForGeneration(t, one, two, "trust-a")
	elapsed := time.Since(start)
	stop.Store(true)
	wg.Wait()

	for _, p := range problems {
		t.Error(p)
	}
	swaps := s.metric(t, `vouch_config_reloads_total{result="success"}`)
	failures := s.metric(t, `vouch_config_reloads_total{result="failure"}`)
	t.Logf("%d updates in %v: %v swaps, %v rejected; %d requests (%d answered under A, %d under B)",
		updates, elapsed.Round(time.Millisecond), swaps, failures, requests.Load(), seenA.Load(), seenB.Load())
	if failures != 0 {
		t.Errorf("%v changes rejected; every update was valid\n%s", failures, s.logs.String())
	}
	if swaps < 2 {
		t.Errorf("%v swaps, want at least 2 (to B and back to A)", swaps)
	}
}

// waitForGeneration waits until a request for one and two is answered by
// verifier.
func (s *served) waitForGeneration(t *testing.T, one, two, verifier string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		answers, err := s.verify(one, two)
		if err == nil && answers[0].verifiers[verifier] && answers[1].verifiers[verifier] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer by %s: %v %+v", verifier, err, answers)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
