package fault

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vouch-project/vouch/cache/redistest"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/internal/testbed/testca"
)

// budget is vouch's --budget in the suite; an answer slower than budget
// plus slack (the load generator and vouch share 2 busy cores) counts as
// past the budget.
const (
	budget = 2 * time.Second
	slack  = 1500 * time.Millisecond
)

// bed is one vouch serve process between the load and its faults.
type bed struct {
	t       testing.TB
	hostile *hostile
	proxy   *testbed.Toxiproxy
	vouch   *testbed.Process
	addr    string // vouch's HTTPS listener
	metrics string // its plain-HTTP metrics listener
	dir     string // configuration, trust and TLS files
	ca      *testca.CA
	client  *http.Client
	push    *testbed.Pusher
	signer  *testbed.NotationSigner
	host    string // the registry, through the proxy
	sets    int

	signed, unsigned []string // image references, through the proxy
}

// Proxies in front of the registry and Redis.
const (
	registryProxy = "registry"
	redisProxy    = "redis"
)

// newBed pushes signed and unsigned images to a hostile registry, puts
// Toxiproxy in front of it and of a real Redis, and starts vouch serve on
// them with short cache lifetimes, so that faults reach the registry and
// Redis all along a run rather than only on the first request.
func newBed(t testing.TB) *bed {
	t.Helper()
	b := &bed{t: t, hostile: newHostile(), dir: t.TempDir()}
	reg := testbed.GGCR(t, b.hostile.wrap)
	signer := testbed.NewNotationSigner(t)
	b.signer, b.push = signer, testbed.NewPusher(t, reg.Host, "fault/app")
	b.proxy = testbed.StartToxiproxy(t)
	b.host = b.proxy.Proxy(registryProxy, reg.Host)
	b.fresh()
	redis := redistest.Start(t)
	redisAddr := b.proxy.Proxy(redisProxy, redis.Addr)

	// Configuration and trust files, reloaded every 100 ms.
	ca, err := os.ReadFile(signer.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	b.write("ca.pem", ca)
	b.write("trustpolicy.json", []byte(`{"version": "1.0", "trustPolicies": [{"name": "all", "registryScopes": ["*"],
  "signatureVerification": {"level": "strict"}, "trustStores": ["ca:fault"], "trustedIdentities": ["*"]}]}`))
	b.writeConfig("notation")
	b.write("hmac.key", []byte("fault-suite-hmac-key-0123456789abcdef\n"))

	// TLS from a CA of the test's, so that the serving certificate can be
	// rotated under load by issuing another.
	if b.ca, err = testca.New(testca.Options{}); err != nil {
		t.Fatal(err)
	}
	b.rotateCert()

	b.addr, b.metrics = testbed.FreeAddr(t), testbed.FreeAddr(t)
	b.vouch = testbed.Launch(t, testbed.ProcessOptions{
		Name: "vouch serve", Path: testbed.Vouch(t), StopSignal: syscall.SIGTERM,
		Args: []string{"serve", "--listen", b.addr, "--metrics-listen", b.metrics,
			"--tls-cert-file", filepath.Join(b.dir, "tls.crt"), "--tls-key-file", filepath.Join(b.dir, "tls.key"),
			"--config", filepath.Join(b.dir, "vouch.yaml"), "--config-reload-interval", "100ms",
			"--plain-http", "--allow-internal-registry", "127.0.0.1", "--budget", budget.String(),
			"--cache-ttl", "500ms", "--deny-cache-ttl", "500ms", "--tag-ttl", "250ms", "--tag-max-stale", "1s",
			"--redis-addr", redisAddr, "--redis-hmac-key-file", filepath.Join(b.dir, "hmac.key")},
	})
	// Keep-alives off: every request is a new TLS handshake, so that a
	// rotated certificate is used at once.
	b.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: b.ca.Pool(), MinVersion: tls.VersionTLS13}, DisableKeepAlives: true}}
	plain := &http.Client{Timeout: 2 * time.Second}
	testbed.WaitFor(t, "vouch serve ready", 60*time.Second, b.vouch, func() error { return testbed.HTTPReady(plain, "http://"+b.metrics+"/readyz") })
	return b
}

// fresh pushes a new set of three signed and three unsigned images and
// makes the load ask about them: vouch has cached nothing of them (not
// their tags, verdicts, manifests or blobs), so a fault switched on next
// meets vouch's first reads. A signed image of the set is the one whose
// referrers the hostile registry lists for every subject in its
// foreign-referrers mode.
func (b *bed) fresh() {
	b.t.Helper()
	b.sets++
	b.signed, b.unsigned = nil, nil
	for i := range 3 {
		tag := fmt.Sprintf("%d-%d", b.sets, i)
		s := b.push.Image("s"+tag, "signed-"+tag)
		b.signer.Sign(b.push, s)
		if i == 0 {
			b.hostile.mu.Lock()
			b.hostile.foreign = s.Digest.String()
			b.hostile.mu.Unlock()
		}
		b.push.Image("u"+tag, "unsigned-"+tag)
		b.signed = append(b.signed, b.host+"/fault/app:s"+tag)
		b.unsigned = append(b.unsigned, b.host+"/fault/app:u"+tag)
	}
}

// write replaces a file of the bed's folder at once (rename over it), as
// the kubelet and careful tools do.
func (b *bed) write(name string, data []byte) {
	b.t.Helper()
	tmp := filepath.Join(b.dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		b.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(b.dir, name)); err != nil {
		b.t.Fatal(err)
	}
}

// writeConfig writes vouch.yaml with one notation verifier named name:
// configurations that differ, and so reload, but decide alike.
func (b *bed) writeConfig(name string) {
	b.write("vouch.yaml", []byte(`version: v1
trustStores:
  - name: ca:fault
    files: [ca.pem]
verifiers:
  - name: `+name+`
    type: notation
    notation:
      trustPolicy: trustpolicy.json
`))
}

// rotateCert issues a new serving certificate from the bed's CA and
// writes it, certificate then key, each file replaced at once: between
// the two writes the files do not match, as with a naive rotation.
func (b *bed) rotateCert() {
	b.t.Helper()
	cert, err := b.ca.TLS(testca.Subject("vouch fault suite", "vouch"))
	if err != nil {
		b.t.Fatal(err)
	}
	key, err := cert.KeyPEM()
	if err != nil {
		b.t.Fatal(err)
	}
	b.write("tls.crt", cert.CertPEM())
	b.write("tls.key", key)
}

// Outcomes of one request.
const (
	allowed    = "allowed"
	denied     = "denied"
	undecided  = "undecided" // vouch could not decide: fail closed
	unanswered = "unanswered"
)

// tally counts what vouch answered during a run.
type tally struct {
	mu sync.Mutex
	// byOutcome counts answers by what was asked (signed, unsigned) and
	// what came back.
	byOutcome  map[string]int
	requests   int
	wrongAllow int // an unsigned image allowed
	pastBudget int // answered later than budget + slack
	maxLatency time.Duration
	samples    []string // a few unanswered requests' errors
}

func (y *tally) add(signed bool, outcome string, took time.Duration, detail string) {
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.byOutcome == nil {
		y.byOutcome = map[string]int{}
	}
	kind := "unsigned"
	if signed {
		kind = "signed"
	}
	y.byOutcome[kind+" "+outcome]++
	y.requests++
	if !signed && outcome == allowed {
		y.wrongAllow++
		y.samples = append(y.samples, "WRONG ALLOW: "+detail)
	}
	if took > budget+slack {
		y.pastBudget++
	}
	y.maxLatency = max(y.maxLatency, took)
	if outcome == unanswered && len(y.samples) < 5 {
		y.samples = append(y.samples, detail)
	}
}

func (y *tally) count(key string) int {
	y.mu.Lock()
	defer y.mu.Unlock()
	return y.byOutcome[key]
}

// load runs workers that ask vouch about the bed's images, through the
// Gatekeeper provider and the admission webhook by turns, until d has
// passed.
func (b *bed) load(d time.Duration, workers int) *tally {
	y := &tally{}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; ctx.Err() == nil; i++ {
				signed := i%2 == 0
				images := b.unsigned
				if signed {
					images = b.signed
				}
				image := images[(i/2)%len(images)]
				start := time.Now()
				var outcome, detail string
				if (i/2)%2 == 0 {
					outcome, detail = b.gatekeeper(image)
				} else {
					outcome, detail = b.admission(image)
				}
				y.add(signed, outcome, time.Since(start), image+": "+detail)
			}
		})
	}
	wg.Wait()
	return y
}

// gatekeeper asks the provider about image and classifies the answer.
func (b *bed) gatekeeper(image string) (string, string) {
	body := `{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":["` + image + `"]}}`
	data, err := b.post("/gatekeeper/v1/verify", body)
	if err != nil {
		return unanswered, err.Error()
	}
	var out struct {
		Response struct {
			SystemError string `json:"systemError"`
			Items       []struct {
				Error string `json:"error"`
				Value struct {
					IsSuccess bool `json:"isSuccess"`
				} `json:"value"`
			} `json:"items"`
		} `json:"response"`
	}
	if err := json.Unmarshal(data, &out); err != nil || len(out.Response.Items) != 1 {
		return unanswered, fmt.Sprintf("answer %.300s (%v)", data, err)
	}
	switch it := out.Response.Items[0]; {
	case out.Response.SystemError != "" || it.Error != "":
		return undecided, out.Response.SystemError + it.Error
	case it.Value.IsSuccess:
		return allowed, ""
	default:
		return denied, ""
	}
}

// admission asks the validating webhook about a Pod of image.
func (b *bed) admission(image string) (string, string) {
	body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"fault","kind":{"group":"","version":"v1","kind":"Pod"},` +
		`"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"default","operation":"CREATE",` +
		`"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default"},"spec":{"containers":[{"name":"app","image":"` + image + `"}]}}}}`
	data, err := b.post("/admission/v1/validate", body)
	if err != nil {
		return unanswered, err.Error()
	}
	var out struct {
		Response *struct {
			Allowed bool `json:"allowed"`
			Status  struct {
				Message string `json:"message"`
			} `json:"status"`
		} `json:"response"`
	}
	if err := json.Unmarshal(data, &out); err != nil || out.Response == nil {
		return unanswered, fmt.Sprintf("answer %.300s (%v)", data, err)
	}
	switch {
	case out.Response.Allowed:
		return allowed, ""
	case strings.Contains(out.Response.Status.Message, "could not decide"):
		return undecided, out.Response.Status.Message
	default:
		return denied, out.Response.Status.Message
	}
}

func (b *bed) post(path, body string) ([]byte, error) {
	resp, err := b.client.Post("https://"+b.addr+path, "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %.300s", resp.StatusCode, data)
	}
	return data, nil
}

// metric reads one series of vouch's /metrics (0 when absent).
func (b *bed) metric(series string) float64 {
	b.t.Helper()
	resp, err := http.Get("http://" + b.metrics + "/metrics")
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(data)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// rss returns vouch's resident set and its peak, in bytes, from /proc.
func (b *bed) rss() (now, peak int64) {
	b.t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.vouch.PID()))
	if err != nil {
		b.t.Fatal(err)
	}
	for line := range bytes.Lines(data) {
		f := strings.Fields(string(line))
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			now = kb << 10
		case "VmHWM:":
			peak = kb << 10
		}
	}
	return now, peak
}
