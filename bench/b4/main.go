// Command b4 is benchmark B4: a cluster-scale replay. 10,000 pods of 10
// images each, drawn (Zipf) from 2,000 distinct notation-signed images,
// arrive at a fixed rate as Gatekeeper provider requests; the registry is
// behind a proxy that delays every request by 20 ms. vouch and Ratify run
// with 1 replica and with 3 (vouch's replicas share Redis; Ratify's
// shared cache needs Dapr, which cannot run here, so its replicas keep
// their own in-memory caches), each configuration from cold. It prints
// p50/p95/p99/max latency, answers over 3 s (Gatekeeper's default
// timeout: each is an unverified admission), errors, registry requests
// and peak memory. Configuration vouchpre is vouch with pre-verification:
// each image is announced on /events/v1/subjects -lead (2 s) before the
// first pod that names it, as a registry push or a new workload would
// (the replay starts -lead after the first announcement, so that the first
// pods have their lead too).
//
// Usage: go run ./bench/b4 [-pods 10000] [-rate 50] [-images 2000] [-delay 20ms] [-configs vouch-1,vouchpre-1]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vouch-project/vouch/bench/delayproxy"
	"github.com/vouch-project/vouch/bench/internal/benchenv"
	"github.com/vouch-project/vouch/bench/loadgen"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/server/engine"
)

type flags struct {
	pods, images, perPod int
	rate, zipfS          float64
	delay, lead          time.Duration
	configs, vouchArgs   string
	vouchEnv             string
	keep                 bool
}

func main() {
	var f flags
	flag.IntVar(&f.pods, "pods", 10000, "pods (provider requests) to replay")
	flag.IntVar(&f.images, "images", 2000, "distinct signed images")
	flag.IntVar(&f.perPod, "per-pod", 10, "images per pod")
	flag.Float64Var(&f.rate, "rate", 50, "pods per second (open-loop arrivals)")
	flag.Float64Var(&f.zipfS, "zipf", 1.1, "Zipf exponent s (> 1) of image popularity")
	flag.DurationVar(&f.delay, "delay", 20*time.Millisecond, "delay the proxy adds to every registry request")
	flag.StringVar(&f.configs, "configs", "vouch-1,ratify-1,vouch-3,ratify-3", "configurations to run, in order: SERVER-REPLICAS")
	flag.DurationVar(&f.lead, "lead", 2*time.Second, "with configuration vouchpre: how long before the first pod that names an image vouch is told about it (/events/v1/subjects, as a registry push or a new workload would)")
	flag.StringVar(&f.vouchArgs, "vouch-args", "", "more flags for every vouch serve, space-separated (e.g. \"--tag-ttl 2m\")")
	flag.StringVar(&f.vouchEnv, "vouch-env", "", "environment variables for every vouch serve, space-separated NAME=VALUE (e.g. GOMEMLIMIT=40MiB)")
	flag.BoolVar(&f.keep, "keep", false, "keep the scratch folder")
	flag.Parse()
	if err := run(f); err != nil {
		fmt.Fprintln(os.Stderr, "b4:", err)
		os.Exit(1)
	}
}

type outcome struct {
	config   string
	res      *loadgen.Result
	requests delayproxy.Counts
	peakRSS  []int64
	cpu      time.Duration
}

func run(f flags) error {
	ctx := context.Background()
	env, fx, closeAll, err := benchenv.Open(f.keep)
	if err != nil {
		return err
	}
	defer closeAll()
	env.VouchEnv = strings.Fields(f.vouchEnv)
	header := env.Header("B4: cluster-scale replay", fmt.Sprintf("go run ./bench/b4 -pods %d -rate %g -images %d -per-pod %d -zipf %g -delay %v -configs %s%s", f.pods, f.rate, f.images, f.perPod, f.zipfS, f.delay, f.configs, quotedArgs("-vouch-args", f.vouchArgs)+quotedArgs("-vouch-env", f.vouchEnv)))

	proxy, err := fx.Registry.Proxy(f.delay, 0)
	if err != nil {
		return err
	}
	defer proxy.Close()
	refs, err := pushImages(ctx, fx, proxy.Host, f.images)
	if err != nil {
		return err
	}
	pods := drawPods(f, refs)

	var redis *testbed.Redis
	var outcomes []outcome
	for _, cfg := range strings.Split(f.configs, ",") {
		name, n := cfg, 1
		if i := strings.LastIndexByte(cfg, '-'); i > 0 {
			name = cfg[:i]
			fmt.Sscan(cfg[i+1:], &n)
		}
		var servers []*benchenv.Server
		stopAll := func() {
			for _, s := range servers {
				s.Stop()
			}
		}
		switch name {
		case "vouch", "vouchpre":
			args := []string{"--notation-cert", fx.Signer.CAFile, "--plain-http", "--allow-internal-registry", proxy.Host}
			args = append(args, strings.Fields(f.vouchArgs)...)
			if name == "vouchpre" {
				tokenFile := filepath.Join(env.Dir("preverify"), "token")
				if err := os.WriteFile(tokenFile, []byte(preverifyToken), 0o600); err != nil {
					return err
				}
				args = append(args, "--events-token-file", tokenFile, "--preverify-rate", "1000", "--preverify-registry-concurrency", "32", "--preverify-queue", "4096")
			}
			if n > 1 {
				if redis == nil {
					if redis, err = env.StartRedis(); err != nil {
						return err
					}
					defer redis.Stop()
				}
				if err := redis.Flush(); err != nil {
					return err
				}
				redisArgs, err := env.RedisArgs(redis)
				if err != nil {
					return err
				}
				args = append(args, redisArgs...)
			}
			for i := 0; i < n; i++ {
				s, err := env.StartVouch(fmt.Sprintf("%s-%d", cfg, i), args...)
				if err != nil {
					stopAll()
					return err
				}
				servers = append(servers, s)
			}
		case "ratify":
			for i := 0; i < n; i++ {
				// Each replica has its own signature cache folder, as each
				// pod would.
				dir := env.Dir(fmt.Sprintf("ratify-%s-%d", cfg, i))
				conf := filepath.Join(dir, "config.json")
				if err := benchenv.RatifyConfig(conf, filepath.Join(dir, "cache"), fx.Signer.CAFile, ""); err != nil {
					return err
				}
				s, err := env.StartRatify(fmt.Sprintf("%s-%d", cfg, i), conf, "--cache-enabled", "--cache-type", "ristretto")
				if err != nil {
					stopAll()
					return err
				}
				servers = append(servers, s)
			}
		default:
			return fmt.Errorf("unknown configuration %q", cfg)
		}
		client, err := env.Client(4096)
		if err != nil {
			stopAll()
			return err
		}
		var urls []string
		cpu0 := time.Duration(0)
		for _, s := range servers {
			urls = append(urls, s.URL)
			cpu0 += s.CPU()
		}
		proxy.Reset()
		benchenv.Logf("%s: %d pods at %g/s", cfg, len(pods), f.rate)
		announced := make(chan struct{})
		actx, stopAnnounce := context.WithCancel(ctx)
		if name == "vouchpre" {
			// The replay starts lead after the announcements, so that the
			// first pods get their lead as the later ones do.
			start := time.Now().Add(f.lead)
			go announce(actx, client, urls, pods, f.rate, f.lead, start, announced)
			time.Sleep(time.Until(start))
		} else {
			close(announced)
		}
		res, err := loadgen.Run(ctx, loadgen.Options{
			URLs: urls, Client: client, Protocol: loadgen.Gatekeeper{},
			Keys:     func(i int) []string { return pods[i] },
			Requests: len(pods), Rate: f.rate, Timeout: 30 * time.Second,
		})
		stopAnnounce()
		<-announced
		if err != nil {
			stopAll()
			return err
		}
		o := outcome{config: cfg, res: res, requests: proxy.Counts()}
		for _, s := range servers {
			o.peakRSS = append(o.peakRSS, s.PeakRSS())
			o.cpu += s.CPU()
		}
		o.cpu -= cpu0
		benchenv.Logf("  %s; registry %s", res, o.requests)
		if res.FirstError != "" {
			benchenv.Logf("  first error: %.300s", res.FirstError)
		}
		outcomes = append(outcomes, o)
		stopAll()
		client.CloseIdleConnections()
	}

	distinct := map[string]bool{}
	for _, p := range pods {
		for _, k := range p {
			distinct[k] = true
		}
	}
	tagTTL := tagTTLOf(f.vouchArgs)
	refreshes := refreshFloor(pods, f.rate, tagTTL)
	floor := 4*len(distinct) + 1
	var tbl benchenv.Table
	tbl.Header = []string{"configuration", "p50 ms", "p95 ms", "p99 ms", "max ms", "answers over 3 s", "failed requests", "keys answered with an error (requests)", "unverified pods (failed, over 3 s, or a key error)", "registry requests", "÷ floor (÷ floor with refreshes)", "peak RSS MiB (per replica)", "server CPU s", "achieved pods/s"}
	for _, o := range outcomes {
		var rss []string
		for _, r := range o.peakRSS {
			rss = append(rss, benchenv.MiB(r))
		}
		tbl.Add(o.config, benchenv.Ms(o.res.Percentile(50)), benchenv.Ms(o.res.Percentile(95)), benchenv.Ms(o.res.Percentile(99)), benchenv.Ms(o.res.Max()),
			fmt.Sprint(o.res.OverBudget), fmt.Sprint(o.res.ErrorCount()), fmt.Sprintf("%d (%d)", o.res.KeyErrors, o.res.KeyErrorRequests), fmt.Sprint(o.res.Unverified), fmt.Sprintf("%d (%s)", o.requests.Total, kinds(o.requests)),
			fmt.Sprintf("%.2f (%.2f)", float64(o.requests.Total)/float64(floor), float64(o.requests.Total)/float64(floor+refreshes)),
			strings.Join(rss, " / "), fmt.Sprintf("%.1f", o.cpu.Seconds()), fmt.Sprintf("%.1f", o.res.Throughput()))
	}
	// The same figures for the first fifth of the pods (cold caches) and
	// the rest.
	var phases benchenv.Table
	phases.Header = []string{"configuration", "pods 1–20% p50 ms", "p99 ms", "unverified", "pods 21–100% p50 ms", "p99 ms", "unverified"}
	for _, o := range outcomes {
		cut := len(o.res.ByRequest) / 5
		a, b := phase(o.res.ByRequest[:cut]), phase(o.res.ByRequest[cut:])
		phases.Add(o.config, benchenv.Ms(loadgen.Percentile(a.lat, 50)), benchenv.Ms(loadgen.Percentile(a.lat, 99)), fmt.Sprint(a.slow),
			benchenv.Ms(loadgen.Percentile(b.lat, 50)), benchenv.Ms(loadgen.Percentile(b.lat, 99)), fmt.Sprint(b.slow))
	}
	fmt.Print(header)
	fmt.Printf("- load average at end: %s\n- %d pods × %d images drawn from %d images (Zipf s=%g; %d distinct images appear), %g pods/s open loop, registry delay %v; one replay per configuration, each from cold (fresh processes, empty caches; Redis flushed)\n- the floor for registry requests: %d distinct images × 4 (resolve, referrers tag, signature manifest, envelope blob) + the referrers API probe once ≈ %d; a tag cached for less than the run is resolved again: with tags used as they are for %v (--tag-ttl) and refreshed when used after that, at least %d refreshes (one per tag and stretch of %v in which a pod names it, after its first resolution), so a floor of %d with refreshes\n\n",
		benchenv.LoadAvg(), len(pods), f.perPod, f.images, f.zipfS, len(distinct), f.rate, f.delay, len(distinct), floor,
		tagTTL, refreshes, tagTTL, floor+refreshes)
	fmt.Print(tbl.String())
	fmt.Printf("\nBy phase (\"unverified\" here: failed or over 3 s; key errors are not split by phase):\n\n%s", phases.String())
	fmt.Printf("\nLatency is measured from each request's planned arrival (open loop), so queueing counts. Servers run with their defaults except TLS and the trust material: vouch's verdict cache 5 min, tags 10 s; Ratify's verification cache (ristretto, in memory) 10 s. Servers:\n\n```\n")
	fmt.Printf("%svouch serve --tls-cert-file WORK/tls/tls.crt --tls-key-file WORK/tls/tls.key --notation-cert WORK/trust/ca.pem --plain-http --allow-internal-registry PROXY%s [--redis-addr REDIS --redis-hmac-key-file WORK/redis-hmac/key]\n  vouchpre adds: --events-token-file WORK/preverify/token --preverify-rate 1000 --preverify-registry-concurrency 32 --preverify-queue 4096\nratify serve --cert-dir WORK/tls -c WORK/ratify-CONFIG/config.json --cache-enabled --cache-type ristretto\n```\n", suffixed(f.vouchEnv, " "), prefixed(" ", f.vouchArgs))
	return nil
}

// tagTTLOf returns the --tag-ttl of args, or vouch's default.
func tagTTLOf(args string) time.Duration {
	ttl := engine.DefaultTagTTL
	fs := strings.Fields(args)
	for i, a := range fs {
		v, ok := strings.CutPrefix(a, "--tag-ttl=")
		if a == "--tag-ttl" && i+1 < len(fs) {
			v, ok = fs[i+1], true
		}
		if d, err := time.ParseDuration(v); ok && err == nil {
			ttl = d
		}
	}
	return ttl
}

// refreshFloor returns the fewest tag resolutions after the first that a
// server makes on the replay when it uses a tag's digest as it is for ttl
// and resolves the tag again when a pod names it later: one per tag and
// stretch of ttl in which a pod names it (pod i arrives at i/rate).
func refreshFloor(pods [][]string, rate float64, ttl time.Duration) int {
	if ttl <= 0 {
		return 0
	}
	resolved := map[string]time.Duration{}
	n := 0
	for i, p := range pods {
		at := time.Duration(float64(i) / rate * float64(time.Second))
		for _, k := range p {
			last, ok := resolved[k]
			switch {
			case !ok:
				resolved[k] = at
			case at-last >= ttl:
				resolved[k] = at
				n++
			}
		}
	}
	return n
}

func suffixed(s, suffix string) string {
	if s == "" {
		return ""
	}
	return s + suffix
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func quotedArgs(flag, args string) string {
	if args == "" {
		return ""
	}
	return fmt.Sprintf(" %s %q", flag, args)
}

// preverifyToken is the events token of configuration vouchpre.
const preverifyToken = "b4-preverify-token-0123456789"

// announce tells the servers about each image lead before the planned
// arrival of the first pod that names it (pods arrive at rate from start,
// which is at least lead after the call), round robin over the servers, as
// registry pushes or new workloads would; it closes done when it returns.
func announce(ctx context.Context, client *http.Client, urls []string, pods [][]string, rate float64, lead time.Duration, start time.Time, done chan<- struct{}) {
	defer close(done)
	seen := map[string]bool{}
	for i, pod := range pods {
		var fresh []string
		for _, k := range pod {
			if !seen[k] {
				seen[k] = true
				fresh = append(fresh, k)
			}
		}
		if len(fresh) == 0 {
			continue
		}
		at := start.Add(time.Duration(float64(i)/rate*float64(time.Second)) - lead)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(at)):
		}
		body, _ := json.Marshal(map[string]any{"subjects": fresh})
		url := strings.TrimSuffix(urls[i%len(urls)], "/gatekeeper/v1/verify") + "/events/v1/subjects"
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+preverifyToken)
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
}

type phaseStats struct {
	lat  []time.Duration
	slow int
}

// phase collects the answered latencies of a slice of ByRequest, and
// counts the requests that failed (0) or took over 3 s.
func phase(by []time.Duration) phaseStats {
	var p phaseStats
	for _, d := range by {
		if d == 0 || d > loadgen.DefaultBudget {
			p.slow++
		}
		if d > 0 {
			p.lat = append(p.lat, d)
		}
	}
	return p
}

func kinds(c delayproxy.Counts) string {
	var parts []string
	for _, k := range delayproxy.Kinds {
		if n := c.ByKind[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	if c.Canceled > 0 {
		parts = append(parts, fmt.Sprintf("%d abandoned", c.Canceled))
	}
	return strings.Join(parts, ", ")
}

// pushImages pushes n signed images straight to the registry, 10 tags per
// repository, and returns their references through the proxy at host.
func pushImages(ctx context.Context, fx *benchenv.Fixture, host string, n int) ([]string, error) {
	benchenv.Logf("pushing and signing %d images", n)
	refs := make([]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				repo, tag := fmt.Sprintf("bench/b4-%03d", i/10), fmt.Sprintf("v%d", i%10)
				if _, err := fx.NotationImage(ctx, repo, tag); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				refs[i] = fmt.Sprintf("%s/%s:%s", host, repo, tag)
			}
		}()
	}
	start := time.Now()
	for i := 0; i < n; i++ {
		next <- i
		if i > 0 && i%500 == 0 {
			benchenv.Logf("  %d pushed (%v)", i, time.Since(start).Round(time.Second))
		}
	}
	close(next)
	wg.Wait()
	return refs, first
}

// drawPods draws each pod's images: distinct within a pod, by Zipf
// popularity, with a fixed seed so that every configuration replays the
// same pods.
func drawPods(f flags, refs []string) [][]string {
	r := rand.New(rand.NewPCG(7, 7))
	z := rand.NewZipf(r, f.zipfS, 1, uint64(len(refs)-1))
	pods := make([][]string, f.pods)
	for i := range pods {
		seen := map[uint64]bool{}
		for len(pods[i]) < f.perPod {
			k := z.Uint64()
			if seen[k] {
				continue
			}
			seen[k] = true
			pods[i] = append(pods[i], refs[k])
		}
	}
	return pods
}
