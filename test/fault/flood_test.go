package fault

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
	"syscall"
	"testing"
	"time"

	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/server"
)

// floodQueue is vouch's --preverify-queue in TestEventFlood.
const floodQueue = 64

// TestEventFlood floods vouch serve's registry events endpoint while the
// registry that every event names accepts connections and never answers,
// and asks admission about images whose verdicts are cached, through the
// Gatekeeper provider and the admission webhook.
//
// The registry is a real distribution registry, behind Toxiproxy, whose
// notifications.endpoints point at vouch: its own notifications of the
// pushes and the signature make vouch verify the images ahead (one signed,
// one unsigned), so that admission finds them cached. Then the proxy
// stalls every read (the "timeout" toxic), the test posts notification
// envelopes in distribution's format from four clients, each event a new
// tag or a new signature of the two images on that registry, and more
// real pushes reach the registry directly, whose notifications come in
// among the flood. Every pre-verification now waits on the stalled
// registry, so the queue fills and stays full.
//
// What must hold, and does not depend on timing:
//   - the queue stays within its bound: vouch_preverify_queue_length never
//     exceeds --preverify-queue, every event is accounted for as queued,
//     duplicate, dropped or ignored, and the excess is dropped;
//   - admission never waits on the queue: every answer is right (signed
//     allowed, unsigned denied) and comes from the verdict cache (no
//     miss). An answer that waited on the stalled registry would be
//     "could not decide in time" at --budget, counted as wrong; the
//     queue is full and its workers blocked before the first question
//     and after the last;
//   - the registry's own notifications are still received during the
//     flood (every event endpoint request is answered at once);
//   - no blowup: after the stall ends, the queue drains, goroutines come
//     back to where they were, and the resident set stays bounded.
//
// The latencies of the answers are logged, not asserted.
func TestEventFlood(t *testing.T) {
	dir := t.TempDir()
	if err := server.GenerateTLS(dir, nil); err != nil {
		t.Fatal(err)
	}
	token := "flood-events-token-0123456789abcdef"
	tokenFile := filepath.Join(dir, "events-token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, metrics, eventsAddr := testbed.FreeAddr(t), testbed.FreeAddr(t), testbed.FreeAddr(t)
	reg, err := testbed.StartDistribution(testbed.DistributionOptions{Bin: testbed.Bin(t, "registry"), Dir: t.TempDir(),
		Notify: &testbed.Notify{URL: "https://" + eventsAddr + "/events/v1/registry", Token: token, CAFile: filepath.Join(dir, server.CAFile)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reg.Stop)
	proxy := testbed.StartToxiproxy(t)
	host := proxy.Proxy(registryProxy, reg.Host)

	// Pushed through the proxy: the notifications name its host, the
	// one vouch reads.
	signer := testbed.NewNotationSigner(t)
	push := testbed.NewPusher(t, host, "flood/app")
	signedDesc := push.Image("signed", "signed")
	signer.Sign(push, signedDesc)
	unsignedDesc := push.Image("unsigned", "unsigned")
	signed, unsigned := host+"/flood/app:signed", host+"/flood/app:unsigned"

	b := &bed{t: t, addr: addr, metrics: metrics}
	b.vouch = testbed.Launch(t, testbed.ProcessOptions{
		Name: "vouch serve", Path: testbed.Vouch(t), StopSignal: syscall.SIGTERM,
		Args: []string{"serve", "--listen", addr, "--metrics-listen", metrics, "--events-listen", eventsAddr,
			"--tls-cert-file", filepath.Join(dir, server.CertFile), "--tls-key-file", filepath.Join(dir, server.KeyFile),
			"--events-token-file", tokenFile, "--notation-cert", signer.CAFile,
			"--plain-http", "--allow-internal-registry", "127.0.0.1", "--budget", budget.String(), "--timeout", "20s",
			"--cache-ttl", "1h", "--deny-cache-ttl", "1h", "--tag-ttl", "1h", "--tag-max-stale", "2h",
			"--preverify-queue", fmt.Sprint(floodQueue), "--preverify-rate", "100"},
	})
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(dir, server.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(caPEM)
	b.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}, MaxIdleConnsPerHost: 16}}
	plain := &http.Client{Timeout: 2 * time.Second}
	testbed.WaitFor(t, "vouch serve ready", 60*time.Second, b.vouch, func() error { return testbed.HTTPReady(plain, "http://"+metrics+"/readyz") })

	// The registry retries its notifications until vouch listens: wait
	// until they made vouch verify both images.
	testbed.WaitFor(t, "the registry's notifications verified", 30*time.Second, b.vouch, func() error {
		a, d := b.metric(`vouch_preverifications_total{source="registry",verdict="allowed"}`), b.metric(`vouch_preverifications_total{source="registry",verdict="denied"}`)
		if a < 1 || d < 1 || b.metric("vouch_preverify_queue_length") != 0 {
			return fmt.Errorf("allowed %v, denied %v, queue %v", a, d, b.metric("vouch_preverify_queue_length"))
		}
		return nil
	})
	hits := func() float64 { return b.metric(`vouch_cache_lookups_total{kind="verdict",result="hit"}`) }
	misses := func() float64 { return b.metric(`vouch_cache_lookups_total{kind="verdict",result="miss"}`) }
	// ask asks about both images through both endpoints and says what is
	// wrong, if anything.
	ask := func(i int) (string, time.Duration) {
		image, want := signed, allowed
		if i%2 == 1 {
			image, want = unsigned, denied
		}
		start := time.Now()
		var got, detail string
		if (i/2)%2 == 0 {
			got, detail = b.gatekeeper(image)
		} else {
			got, detail = b.admission(image)
		}
		took := time.Since(start)
		if got != want {
			return fmt.Sprintf("%s: %s, want %s (%s)", image, got, want, detail), took
		}
		return "", took
	}
	// Before the flood: right, and the verdicts cached (the tags too:
	// --tag-ttl 1h).
	for i := range 4 {
		ask(i)
	}
	h0, m0 := hits(), misses()
	for i := range 4 {
		if wrong, _ := ask(i); wrong != "" {
			t.Fatal(wrong)
		}
	}
	if hits() != h0+4 || misses() != m0 {
		t.Fatalf("before the flood, the answers should come from the cache: hits %v → %v, misses %v → %v", h0, hits(), m0, misses())
	}
	goroutines := b.metric("go_goroutines")
	registryEvents := func() float64 {
		var n float64
		for _, r := range []string{"queued", "duplicate", "dropped", "ignored"} {
			n += b.metric(`vouch_preverify_events_total{result="` + r + `",source="registry"}`)
		}
		return n
	}
	eventsBefore := registryEvents()
	queuedBefore := b.metric(`vouch_preverify_events_total{result="queued",source="registry"}`)

	// The registry stalls: connections are accepted, nothing comes back.
	proxy.AddToxic(registryProxy, testbed.Toxic{Name: "stall", Type: "timeout", Attributes: map[string]int{"timeout": 0}})
	stalled := true
	defer func() {
		if stalled {
			proxy.RemoveToxic(registryProxy, "stall")
		}
	}()

	// The flood: four clients post envelopes of 50 events each, for 3 s
	// or 400 requests at most. Each event is a new tag, or a new
	// signature (a referrers tag push) of one of the two images.
	var (
		mu       sync.Mutex
		answered struct{ Queued, Duplicate, Dropped, Ignored, Requests int }
		failures []string
	)
	events := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	flood := func(ctx context.Context, client int) {
		for n := 0; n < 100 && ctx.Err() == nil; n++ {
			var evs []map[string]any
			for k := range 50 {
				tag := fmt.Sprintf("flood-%d-%d-%d", client, n, k)
				if k%10 == 0 {
					tag = strings.Replace([]string{signedDesc.Digest.String(), unsignedDesc.Digest.String()}[k%20/10], ":", "-", 1)
				}
				evs = append(evs, map[string]any{"action": "push",
					"target":  map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": fmt.Sprintf("sha256:%064x", client<<24|n<<8|k), "repository": "flood/app", "tag": tag},
					"request": map[string]any{"host": host, "method": "PUT"}})
			}
			body, _ := json.Marshal(map[string]any{"events": evs})
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+eventsAddr+"/events/v1/registry", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/vnd.docker.distribution.events.v2+json")
			resp, err := events.Do(req)
			if err != nil {
				if ctx.Err() == nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
				}
				return
			}
			var c struct{ Queued, Duplicate, Dropped, Ignored int }
			err = json.NewDecoder(resp.Body).Decode(&c)
			resp.Body.Close()
			mu.Lock()
			if err != nil || resp.StatusCode != http.StatusAccepted {
				failures = append(failures, fmt.Sprintf("HTTP %d: %v", resp.StatusCode, err))
			}
			answered.Queued += c.Queued
			answered.Duplicate += c.Duplicate
			answered.Dropped += c.Dropped
			answered.Ignored += c.Ignored
			answered.Requests++
			mu.Unlock()
		}
	}
	floodCtx, stopFlood := context.WithTimeout(context.Background(), 3*time.Second)
	defer stopFlood()
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() { flood(floodCtx, c) })
	}
	// The queue length, sampled all along.
	var maxQueue float64
	sampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			// Not b.metric: this is not the test's goroutine.
			if n, err := scrape(plain, metrics, "vouch_preverify_queue_length"); err == nil {
				maxQueue = max(maxQueue, n)
			}
			select {
			case <-sampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	testbed.WaitFor(t, "the queue to fill", 20*time.Second, b.vouch, func() error {
		if n := b.metric("vouch_preverify_queue_length"); n < floodQueue {
			return fmt.Errorf("%v images waiting", n)
		}
		return nil
	})

	// Real pushes straight to the registry (not through the stalled
	// proxy) during the flood: their notifications come in among it.
	direct := testbed.NewPusher(t, reg.Host, "flood/direct")
	for i := range 5 {
		direct.Image(fmt.Sprintf("v%d", i), fmt.Sprintf("direct %d", i))
	}

	// Admission, while the queue is full and its workers wait on the
	// stalled registry: 4 clients, 50 questions each.
	h1, m1 := hits(), misses()
	var lat []time.Duration
	var wrong []string
	var asking sync.WaitGroup
	for c := range 4 {
		asking.Go(func() {
			for i := range 50 {
				w, took := ask(c + i)
				mu.Lock()
				lat = append(lat, took)
				if w != "" {
					wrong = append(wrong, w)
				}
				mu.Unlock()
			}
		})
	}
	asking.Wait()
	full := b.metric("vouch_preverify_queue_length")
	h2, m2 := hits(), misses()
	wg.Wait()
	// The registry's own notifications of the direct pushes (each push
	// posts several: blobs, manifest, tag) reach vouch within its retry
	// budget.
	var real float64
	testbed.WaitFor(t, "the registry's notifications of the direct pushes", 20*time.Second, b.vouch, func() error {
		mu.Lock()
		posted := answered.Queued + answered.Duplicate + answered.Dropped + answered.Ignored
		mu.Unlock()
		real = registryEvents() - eventsBefore - float64(posted)
		if real < 5 {
			return fmt.Errorf("%v events of the registry's own", real)
		}
		return nil
	})
	close(sampling)
	sampler.Wait()

	slices.Sort(lat)
	t.Logf("flood: %d requests of 50 events in 3 s from 4 clients: %+v; %v events of the registry's own among them", answered.Requests, answered, real)
	t.Logf("admission during the flood: %d answers, p50 %v, p99 %v, max %v; queue length at most %v (bound %d), %v at the last answer",
		len(lat), lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond), maxQueue, floodQueue, full)
	if len(failures) > 0 {
		t.Errorf("%d event requests failed: %q", len(failures), failures[:min(len(failures), 5)])
	}
	if len(wrong) > 0 {
		t.Errorf("%d wrong answers during the flood: %q", len(wrong), wrong[:min(len(wrong), 5)])
	}
	if h2-h1 != float64(len(lat)) || m2 != m1 {
		t.Errorf("admission during the flood: verdict hits %v → %v for %d answers, misses %v → %v: every answer should come from the cache", h1, h2, len(lat), m1, m2)
	}
	if maxQueue > floodQueue || full != floodQueue {
		t.Errorf("queue length at most %v, %v at the last answer; want at most and then exactly %d (full: its workers wait on the stalled registry)", maxQueue, full, floodQueue)
	}
	// Each event of the flood names one image; 10 of each 50 name one of
	// the two images, so the rest are all different: few can be queued.
	queued := b.metric(`vouch_preverify_events_total{result="queued",source="registry"}`) - queuedBefore
	// An envelope names each image once: its 5 signature events name 2
	// images, so 47 per envelope.
	if total := answered.Queued + answered.Duplicate + answered.Dropped + answered.Ignored; total != 47*answered.Requests || answered.Dropped == 0 || answered.Ignored != 0 {
		t.Errorf("events answered %+v: want every one of %d accounted for, some dropped, none ignored", answered, 47*answered.Requests)
	}
	// Queued: the bound, plus what the blocked workers took from the
	// queue (2 per registry, --preverify-registry-concurrency) and the
	// registry's own events for the direct pushes.
	if queued > floodQueue+2+real {
		t.Errorf("%v events queued during the flood, over the bound %d + 2 workers + %v of the registry's own", queued, floodQueue, real)
	}

	// The stall ends: the blocked pre-verifications end (--timeout 20s),
	// the queue drains, the goroutines they held end.
	proxy.RemoveToxic(registryProxy, "stall")
	stalled = false
	testbed.WaitFor(t, "the queue to drain and the goroutines to end", 90*time.Second, b.vouch, func() error {
		q, g := b.metric("vouch_preverify_queue_length"), b.metric("go_goroutines")
		if q > 0 || g > goroutines+20 {
			return fmt.Errorf("queue %v, goroutines %v (%v before the flood)", q, g, goroutines)
		}
		return nil
	})
	now, peak := b.rss()
	t.Logf("goroutines %v before the flood, %v after; resident set %d MiB now, %d MiB at its peak", goroutines, b.metric("go_goroutines"), now>>20, peak>>20)
	if peak > 256<<20 {
		t.Errorf("vouch's resident set peaked at %d MiB, over 256 MiB", peak>>20)
	}
	// And vouch is right afterwards.
	for i := range 4 {
		if w, _ := ask(i); w != "" {
			t.Errorf("after the flood: %s", w)
		}
	}
	if out := b.vouch.Output(64 << 10); strings.Contains(out, "panic") {
		t.Errorf("vouch serve's output shows a panic:\n%s", out)
	}
}

// scrape reads one series of vouch's /metrics (0 when absent), without
// failing the test: for goroutines other than the test's.
func scrape(client *http.Client, metrics, series string) (float64, error) {
	resp, err := client.Get("http://" + metrics + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(data)
	if m == nil {
		return 0, nil
	}
	return strconv.ParseFloat(string(m[1]), 64)
}
