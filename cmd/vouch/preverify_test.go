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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vouch-project/vouch/internal/testbed"
)

// TestServeRegistryEvents runs vouch serve with the events endpoints and
// a real distribution registry whose notifications.endpoints point at
// them: an unsigned image is denied and the denial cached (for an hour);
// the notation CLI signs it; the registry's notification makes vouch
// verify it again, and the next question is answered "allowed" from the
// cache, without waiting for the denial's TTL. Then the tag moves to an
// unsigned image, and the push's notification pins it again.
func TestServeRegistryEvents(t *testing.T) {
	dir := t.TempDir()
	if code, out, stderr := vouchRun(t, "serve", "--generate-tls", dir); code != 0 {
		t.Fatalf("--generate-tls: exit %d\n%s%s", code, out, stderr)
	}
	token := "events-token-0123456789abcdef"
	tokenFile := filepath.Join(dir, "events-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	eventsAddr := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	reg, err := testbed.StartDistribution(testbed.DistributionOptions{Bin: testbed.Bin(t, "registry"), Dir: t.TempDir(),
		Notify: &testbed.Notify{URL: "https://" + eventsAddr + "/events/v1/registry", Token: token, CAFile: filepath.Join(dir, "ca.crt")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)

	home := t.TempDir()
	env := []string{"XDG_CONFIG_HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, "cache")}
	notation := func(args ...string) {
		t.Helper()
		if out, err := testbed.RunErr(env, testbed.Bin(t, "notation"), args...); err != nil {
			t.Fatalf("notation %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	notation("cert", "generate-test", "--default", "events.example")
	cert := filepath.Join(home, "notation", "localkeys", "events.example.crt")

	p := testbed.NewPusher(t, reg.Host, "events/app")
	img := p.Image("v1", "unsigned at first")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &lockedBuffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"serve", "--listen", addr, "--metrics-listen", metricsAddr, "--events-listen", eventsAddr,
			"--tls-cert-file", filepath.Join(dir, "tls.crt"), "--tls-key-file", filepath.Join(dir, "tls.key"),
			"--client-ca-file", filepath.Join(dir, "ca.crt"), "--events-token-file", tokenFile,
			"--deny-cache-ttl", "1h", "--tag-ttl", "1h", "--tag-max-stale", "2h", "--preverify-queue", "32",
			"--notation-cert", cert, "--plain-http", "--allow-internal-registry", "127.0.0.1"}, strings.NewReader(""), &bytes.Buffer{}, logs)
	}()
	waitReady(t, metricsAddr, logs)

	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	pool.AppendCertsFromPEM(caPEM)
	clientCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientCert}}}}
	image := reg.Host + "/events/app:v1"
	ask := func() (bool, string) {
		t.Helper()
		body := fmt.Sprintf(`{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":[%q]}}`, image)
		resp, err := client.Post("https://"+addr+"/gatekeeper/v1/verify", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("%v\n%s", err, logs.String())
		}
		defer resp.Body.Close()
		var answer struct {
			Response struct {
				Items []struct {
					Value struct {
						IsSuccess bool   `json:"isSuccess"`
						Reason    string `json:"reason"`
					} `json:"value"`
				} `json:"items"`
			} `json:"response"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || len(answer.Response.Items) != 1 {
			t.Fatalf("answer %+v, %v", answer, err)
		}
		return answer.Response.Items[0].Value.IsSuccess, answer.Response.Items[0].Value.Reason
	}
	metric := func(name string) float64 { return metricValue(t, metricsAddr, name) }
	defer func() {
		if t.Failed() {
			resp, err := http.Get("http://" + metricsAddr + "/metrics")
			if err == nil {
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				for _, line := range strings.Split(string(data), "\n") {
					if strings.HasPrefix(line, "vouch_preverif") || strings.HasPrefix(line, "vouch_cache_lookups") || strings.HasPrefix(line, "vouch_answers") {
						t.Log(line)
					}
				}
			}
		}
	}()
	// The registry retries the notification of the first push until
	// vouch listens: wait until it is verified (denied), so that it
	// cannot arrive after the signature.
	waitFor(t, 20*time.Second, logs, "the first push's notification", func() bool {
		return metric(`vouch_preverifications_total{source="registry",verdict="denied"}`) >= 1
	})

	if ok, reason := ask(); ok {
		t.Fatalf("unsigned image allowed: %s", reason)
	}
	hits := metric(`vouch_cache_lookups_total{kind="verdict",result="hit"}`)
	if ok, _ := ask(); ok || metric(`vouch_cache_lookups_total{kind="verdict",result="hit"}`) != hits+1 {
		t.Fatalf("the denial should be cached: allowed=%v", ok)
	}

	// The registry's requests that vouch refuses: no token, a wrong one;
	// and no client certificate is needed on --events-listen.
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, tok := range []string{"", "wrong-token-0123456789abcdef"} {
		req, _ := http.NewRequest(http.MethodPost, "https://"+eventsAddr+"/events/v1/subjects", strings.NewReader(`{"subject":"`+image+`"}`))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := anon.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token %q: status %d", tok, resp.StatusCode)
		}
	}

	registryRequests := func() float64 {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var n float64
		for _, m := range regexp.MustCompile(`(?m)^vouch_registry_requests_total\{[^}]*\} (\S+)$`).FindAllSubmatch(data, -1) {
			v, _ := strconv.ParseFloat(string(m[1]), 64)
			n += v
		}
		return n
	}
	requestsBefore := registryRequests()
	before := metric(`vouch_preverifications_total{source="registry",verdict="allowed"}`)
	start := time.Now()
	notation("sign", "--insecure-registry", fmt.Sprintf("%s/events/app@%s", reg.Host, img.Digest))
	waitFor(t, 20*time.Second, logs, "the registry's notification to be verified", func() bool {
		return metric(`vouch_preverifications_total{source="registry",verdict="allowed"}`) > before
	})
	t.Logf("signature pushed → verdict replaced in %s, with %v registry requests by vouch", time.Since(start).Round(time.Millisecond), registryRequests()-requestsBefore)
	hits = metric(`vouch_cache_lookups_total{kind="verdict",result="hit"}`)
	if ok, reason := ask(); !ok {
		t.Fatalf("signed image still denied after the notification: %s\n%s", reason, logs.String())
	}
	if got := metric(`vouch_cache_lookups_total{kind="verdict",result="hit"}`); got != hits+1 {
		t.Fatalf("the allow should come from the cache: hits %v → %v", hits, got)
	}

	// The tag moves to an unsigned image: its push's notification pins
	// v1 again (the pin was cached for an hour).
	before = metric(`vouch_preverifications_total{source="registry",verdict="denied"}`)
	p.Image("v1", "another, unsigned")
	waitFor(t, 20*time.Second, logs, "the tag's notification to be verified", func() bool {
		return metric(`vouch_preverifications_total{source="registry",verdict="denied"}`) > before
	})
	if ok, reason := ask(); ok {
		t.Fatalf("the moved tag still answers allowed: %s", reason)
	}

	// A flood from CI: 1000 subjects at once are answered at once, the
	// queue keeps 32 waiting (and 2 more start: --preverify-registry-concurrency)
	// and counts the rest as dropped, and admission
	// answers as before.
	subjects := make([]string, 1000)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("%s/flood/app:%d", reg.Host, i)
	}
	flood, _ := json.Marshal(map[string]any{"subjects": subjects})
	req, _ := http.NewRequest(http.MethodPost, "https://"+eventsAddr+"/events/v1/subjects", bytes.NewReader(flood))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := anon.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var counts struct{ Queued, Duplicate, Dropped int }
	err = json.NewDecoder(resp.Body).Decode(&counts)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted || counts.Queued > 32+2 || counts.Queued+counts.Dropped != 1000 {
		t.Fatalf("flood: status %d, %+v, %v", resp.StatusCode, counts, err)
	}
	if got := metric(`vouch_preverify_events_total{result="dropped",source="subjects"}`); got != float64(counts.Dropped) {
		t.Fatalf("dropped metric %v, answer %d", got, counts.Dropped)
	}
	if ok, reason := ask(); ok {
		t.Fatalf("during the flood the moved tag answers allowed: %s", reason)
	}

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("vouch serve did not stop")
	}
}

func waitReady(t *testing.T, metricsAddr string, logs *lockedBuffer) {
	t.Helper()
	waitFor(t, 10*time.Second, logs, "vouch serve to be ready", func() bool {
		resp, err := http.Get("http://" + metricsAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func waitFor(t *testing.T, limit time.Duration, logs *lockedBuffer, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s\n%s", limit, what, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metricValue reads one sample from vouch's /metrics; 0 when absent.
func metricValue(t *testing.T, metricsAddr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(data)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestServePreverifyFlags: pre-verification's flags are checked before
// anything starts; a token too short is refused with a message that says
// how to make one.
func TestServePreverifyFlags(t *testing.T) {
	dir := t.TempDir()
	if code, out, stderr := vouchRun(t, "serve", "--generate-tls", dir); code != 0 {
		t.Fatalf("--generate-tls: exit %d\n%s%s", code, out, stderr)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("tiny\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsFlags := []string{"--tls-cert-file", filepath.Join(dir, "tls.crt"), "--tls-key-file", filepath.Join(dir, "tls.key")}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--events-listen", ":0"}, exitUsage, "--events-listen needs --events-token-file"},
		{[]string{"--watch-workloads"}, exitUsage, "--watch-workloads needs --kubernetes"},
		{[]string{"--events-token-file", short, "--preverify-rate", "0"}, exitUsage, "must be positive"},
		{[]string{"--events-token-file", short, "--listen", "127.0.0.1:0"}, exitUndecided, "at least 16 are needed"},
	} {
		code, _, stderr := vouchRun(t, append(append([]string{"serve"}, tlsFlags...), tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("serve %s: exit %d: %s\nwant %d, %q", strings.Join(tc.args, " "), code, stderr, tc.code, tc.want)
		}
	}
}

// TestServeRegistryEventsNamespaces: a registry event replaces the cached
// verdict of every policy scope that has one, not only the default's. The
// config file has a scope that names a namespace, so that every namespace
// caches its verdicts under a hash of its own; an unsigned image is denied
// (and the denials cached for an hour) in "prod", in "dev" and for
// requests that name no namespace; the notation CLI signs it, the real
// registry's notification reaches vouch, and all three next answers are
// allowed from the cache.
func TestServeRegistryEventsNamespaces(t *testing.T) {
	dir := t.TempDir()
	if code, out, stderr := vouchRun(t, "serve", "--generate-tls", dir); code != 0 {
		t.Fatalf("--generate-tls: exit %d\n%s%s", code, out, stderr)
	}
	token := "events-token-0123456789abcdef"
	tokenFile := filepath.Join(dir, "events-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	eventsAddr := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	reg, err := testbed.StartDistribution(testbed.DistributionOptions{Bin: testbed.Bin(t, "registry"), Dir: t.TempDir(),
		Notify: &testbed.Notify{URL: "https://" + eventsAddr + "/events/v1/registry", Token: token, CAFile: filepath.Join(dir, "ca.crt")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)

	home := t.TempDir()
	env := []string{"XDG_CONFIG_HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, "cache")}
	notation := func(args ...string) {
		t.Helper()
		if out, err := testbed.RunErr(env, testbed.Bin(t, "notation"), args...); err != nil {
			t.Fatalf("notation %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	notation("cert", "generate-test", "--default", "events.example")
	files := configFiles("notation", readFile(t, filepath.Join(home, "notation", "localkeys", "events.example.crt")))
	files["vouch.yaml"] = append(files["vouch.yaml"], []byte(`policy:
  scopes:
    - name: everywhere
      repositories: ["*"]
      require: [{artifactType: application/vnd.cncf.notary.signature}]
    - name: prod
      repositories: ["*"]
      namespaces: [prod]
      require: [{artifactType: application/vnd.cncf.notary.signature}]
`)...)
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	p := testbed.NewPusher(t, reg.Host, "events/app")
	img := p.Image("v1", "unsigned at first")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &lockedBuffer{}
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"serve", "--listen", addr, "--metrics-listen", metricsAddr, "--events-listen", eventsAddr,
			"--tls-cert-file", filepath.Join(dir, "tls.crt"), "--tls-key-file", filepath.Join(dir, "tls.key"),
			"--client-ca-file", filepath.Join(dir, "ca.crt"), "--events-token-file", tokenFile,
			"--config", filepath.Join(dir, "vouch.yaml"),
			"--deny-cache-ttl", "1h", "--tag-ttl", "1h", "--tag-max-stale", "2h",
			"--plain-http", "--allow-internal-registry", "127.0.0.1"}, strings.NewReader(""), &bytes.Buffer{}, logs)
	}()
	waitReady(t, metricsAddr, logs)

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(readFile(t, filepath.Join(dir, "ca.crt")))
	clientCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientCert}}}}
	image := reg.Host + "/events/app:v1"
	// ask asks the Gatekeeper provider about the image in each of keys'
	// namespaces ("" for none) and returns the answers by namespace.
	ask := func(namespaces ...string) map[string]bool {
		t.Helper()
		keys := make([]string, len(namespaces))
		for i, ns := range namespaces {
			keys[i] = image
			if ns != "" {
				keys[i] = "[" + ns + "]" + image
			}
		}
		body, _ := json.Marshal(map[string]any{"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest", "request": map[string]any{"keys": keys}})
		resp, err := client.Post("https://"+addr+"/gatekeeper/v1/verify", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%v\n%s", err, logs.String())
		}
		defer resp.Body.Close()
		var answer struct {
			Response struct {
				Items []struct {
					Key   string `json:"key"`
					Value struct {
						IsSuccess bool `json:"isSuccess"`
					} `json:"value"`
				} `json:"items"`
			} `json:"response"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || len(answer.Response.Items) != len(keys) {
			t.Fatalf("answer %+v, %v", answer, err)
		}
		got := map[string]bool{}
		for i, it := range answer.Response.Items {
			got[namespaces[i]] = it.Value.IsSuccess
			if it.Key != keys[i] {
				t.Fatalf("answer %d is about %q, asked %q", i, it.Key, keys[i])
			}
		}
		return got
	}
	metric := func(name string) float64 { return metricValue(t, metricsAddr, name) }
	hits := func() float64 { return metric(`vouch_cache_lookups_total{kind="verdict",result="hit"}`) }
	misses := func() float64 { return metric(`vouch_cache_lookups_total{kind="verdict",result="miss"}`) }
	waitFor(t, 20*time.Second, logs, "the first push's notification", func() bool {
		return metric(`vouch_preverifications_total{source="registry",verdict="denied"}`) >= 1
	})

	all := []string{"", "prod", "dev"}
	if got := ask(all...); got[""] || got["prod"] || got["dev"] {
		t.Fatalf("unsigned image allowed: %v", got)
	}
	h, m := hits(), misses()
	if got := ask(all...); got[""] || got["prod"] || got["dev"] || hits() != h+3 || misses() != m {
		t.Fatalf("the denials should be cached: %v, hits %v → %v, misses %v → %v", got, h, hits(), m, misses())
	}

	registryRequests := func() float64 {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var n float64
		for _, m := range regexp.MustCompile(`(?m)^vouch_registry_requests_total\{[^}]*\} (\S+)$`).FindAllSubmatch(data, -1) {
			v, _ := strconv.ParseFloat(string(m[1]), 64)
			n += v
		}
		return n
	}
	requestsBefore := registryRequests()
	before := metric(`vouch_preverifications_total{source="registry",verdict="allowed"}`)
	notation("sign", "--insecure-registry", fmt.Sprintf("%s/events/app@%s", reg.Host, img.Digest))
	// One verification for requests that name no namespace, one for each
	// namespace with a denial cached under a policy of its own.
	waitFor(t, 20*time.Second, logs, "the notification to be verified under the three policies", func() bool {
		return metric(`vouch_preverifications_total{source="registry",verdict="allowed"}`) >= before+3
	})
	t.Logf("signature pushed → verdicts replaced under 3 policies with %v registry requests by vouch", registryRequests()-requestsBefore)
	h, m = hits(), misses()
	if got := ask(all...); !got[""] || !got["prod"] || !got["dev"] {
		t.Fatalf("signed image still denied after the notification: %v\n%s", got, logs.String())
	}
	if hits() != h+3 || misses() != m {
		t.Fatalf("the allows should come from the cache: hits %v → %v, misses %v → %v", h, hits(), m, misses())
	}
	// A namespace that never asked has nothing cached: it was not
	// verified ahead, and verifies now.
	if got := ask("staging"); !got["staging"] || misses() != m+1 {
		t.Fatalf("staging: %v, misses %v → %v", got, m, misses())
	}

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("vouch serve did not stop")
	}
}
