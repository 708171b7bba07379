// Command b3 is benchmark B3: a warm verification server. Gatekeeper-style
// requests of 10 images each, every image already verified and cached;
// `vouch serve` against `ratify serve` (its in-memory cache), both over
// HTTPS with the same certificate, one at a time, interleaved. It prints
// requests/s, p50/p99 latency and server CPU per request for one client,
// for many clients (saturation) and at a fixed open-loop rate.
//
// With -policies it also measures three more vouch servers (built with
// -tags policycode) whose config file decides with the same policy
// written as a require list, in Rego and in CEL.
//
// With -baseline BIN it also measures `vouch serve` from the program BIN
// (vouch-base: a vouch built from another commit), interleaved with the
// others: an A/B comparison of two builds in the same minutes.
//
// Usage: go run ./bench/b3 [-runs 5] [-duration 5s] [-workers 16] [-rate 200] [-policies] [-baseline BIN] [-no-ratify] [-only SCENARIOS] [-check-every N] [-floor] [-vouch-args ARGS]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vouch-project/vouch/bench/internal/benchenv"
	"github.com/vouch-project/vouch/bench/loadgen"
	"github.com/vouch-project/vouch/internal/testbed"
)

func main() {
	runs := flag.Int("runs", 5, "measured rounds (each server once per scenario per round)")
	duration := flag.Duration("duration", 5*time.Second, "length of one measurement")
	workers := flag.Int("workers", 16, "closed-loop clients for the saturation scenario")
	rate := flag.Float64("rate", 200, "open-loop arrival rate (requests/s) for the fixed-rate scenario")
	keys := flag.Int("keys", 10, "images per request")
	keep := flag.Bool("keep", false, "keep the scratch folder")
	policies := flag.Bool("policies", false, "also measure vouch with the policy as a require list, in Rego and in CEL (a config file each)")
	flag.StringVar(&extra.baseline, "baseline", "", "also measure `vouch serve` from this program (vouch-base), for an A/B comparison of two builds")
	flag.BoolVar(&extra.noRatify, "no-ratify", false, "do not start Ratify (A/B runs of vouch builds only)")
	flag.StringVar(&extra.only, "only", "", "comma-separated scenarios to run, of 1,n,open,admission (default all)")
	flag.StringVar(&extra.vouchArgs, "vouch-args", "", "more arguments for the vouch server (not vouch-base), space-separated: e.g. \"--log-level warn\" to measure the request log")
	flag.BoolVar(&extra.floor, "floor", false, "also measure the floor: a minimal Go HTTPS server answering a fixed body of vouch's size (bench/b3/floor)")
	flag.IntVar(&extra.checkEvery, "check-every", 1, "decode one Gatekeeper answer in N in full and check the others by a search for substrings (loadgen.Options.CheckEvery): a lighter load generator, the same for every server")
	flag.Parse()
	if err := run(*runs, *duration, *workers, *rate, *keys, *keep, *policies); err != nil {
		fmt.Fprintln(os.Stderr, "b3:", err)
		os.Exit(1)
	}
}

// extra are the flags for A/B comparisons of vouch builds.
var extra struct {
	baseline, only, vouchArgs string
	noRatify, floor           bool
	checkEvery                int
}

type scenario struct {
	// id names the scenario for -only: 1, n, open or admission.
	id      string
	name    string
	workers int
	rate    float64
	// admission sends AdmissionReviews of one Pod with the keys as its
	// containers to vouch's validating webhook (Ratify has none).
	admission bool
}

type measure struct {
	rps, p50, p99, max, cpu []float64
	errors, overBudget      int
}

func run(runs int, duration time.Duration, workers int, rate float64, nkeys int, keep, policies bool) error {
	ctx := context.Background()
	env, fx, closeAll, err := benchenv.Open(keep)
	if err != nil {
		return err
	}
	defer closeAll()
	header := env.Header("B3: warm server, Gatekeeper requests of 10 cached images", fmt.Sprintf("go run ./bench/b3 -runs %d -duration %v -workers %d -rate %g -keys %d -check-every %d%s", runs, duration, workers, rate, nkeys, extra.checkEvery, map[bool]string{true: " -policies"}[policies]))

	var keys []string
	for i := 0; i < nkeys; i++ {
		desc, err := fx.NotationImage(ctx, "bench/b3", fmt.Sprintf("v%d", i))
		if err != nil {
			return err
		}
		keys = append(keys, fmt.Sprintf("%s/bench/b3@%s", fx.Registry.Host, desc.Digest))
	}
	// The registry is on 127.0.0.1, which vouch serve reaches only when
	// told to (docs/serving.md).
	vouch, err := env.StartVouch("vouch", append([]string{"--notation-cert", fx.Signer.CAFile, "--plain-http", "--allow-internal-registry", fx.Registry.Host}, strings.Fields(extra.vouchArgs)...)...)
	if err != nil {
		return err
	}
	defer vouch.Stop()
	servers := []*benchenv.Server{vouch}
	var ratify *benchenv.Server
	if !extra.noRatify {
		// Ratify's cache TTL is 10 s by default; B3 measures answers from
		// the cache, so it gets as long as vouch's (5 min).
		ratify, err = env.StartRatify("ratify", fx.RatifyNotation, "--cache-enabled", "--cache-type", "ristretto", "--cache-ttl", "5m")
		if err != nil {
			return err
		}
		defer ratify.Stop()
		servers = append(servers, ratify)
	}
	if extra.baseline != "" {
		base, err := env.StartVouchBinary("vouch-base", extra.baseline, "--notation-cert", fx.Signer.CAFile, "--plain-http", "--allow-internal-registry", fx.Registry.Host)
		if err != nil {
			return err
		}
		defer base.Stop()
		servers = append(servers, base)
	}
	if policies {
		more, err := policyServers(env, fx.Signer.CAFile, fx.Registry.Host)
		if err != nil {
			return err
		}
		for _, s := range more {
			defer s.Stop()
		}
		servers = append(servers, more...)
	}
	if extra.floor {
		bin := filepath.Join(env.Dir("bin"), "floor")
		root, err := testbed.ModuleRoot()
		if err != nil {
			return err
		}
		build := exec.Command("go", "build", "-o", bin, "./bench/b3/floor")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build the floor server: %v\n%s", err, out)
		}
		floor, err := env.StartVouchBinary("floor", bin)
		if err != nil {
			return err
		}
		defer floor.Stop()
		servers = append(servers, floor)
	}
	client, err := env.Client(1024)
	if err != nil {
		return err
	}
	size := map[string]int{}
	for _, s := range servers {
		n, err := loadgen.CheckSuccess(ctx, client, s.URL, keys)
		if err != nil {
			return fmt.Errorf("%s: warm-up: %w", s.Name, err)
		}
		size[s.Name] = n
		if extra.checkEvery > 1 {
			// The quick check must pass every server's answer, or the
			// lighter load favours some.
			body, err := answer(ctx, client, s.URL, keys)
			if err != nil {
				return fmt.Errorf("%s: %w", s.Name, err)
			}
			if !(loadgen.Gatekeeper{}).Quick(body, keys) {
				return fmt.Errorf("%s: its answer does not pass loadgen's quick check: %.300s", s.Name, body)
			}
		}
	}
	scenarios := []scenario{
		{id: "1", name: "1 client, closed loop", workers: 1},
		{id: "n", name: fmt.Sprintf("%d clients, closed loop (saturation)", workers), workers: workers},
		{id: "open", name: fmt.Sprintf("open loop, %g requests/s", rate), rate: rate},
		{id: "admission", name: fmt.Sprintf("admission webhook (Pod of %d containers), %d clients", nkeys, workers), workers: workers, admission: true},
	}
	if extra.only != "" {
		var some []scenario
		for _, sc := range scenarios {
			if slices.Contains(strings.Split(extra.only, ","), sc.id) {
				some = append(some, sc)
			}
		}
		scenarios = some
	}
	res := map[string]*measure{}
	for r := 0; r < runs; r++ {
		for _, sc := range scenarios {
			for j := range servers {
				s := servers[(r+j)%len(servers)]
				url, proto := s.URL, loadgen.Protocol(loadgen.Gatekeeper{})
				if sc.admission {
					if !strings.HasPrefix(s.Name, "vouch") {
						continue
					}
					url, proto = strings.Replace(s.URL, "/gatekeeper/v1/verify", "/admission/v1/validate", 1), loadgen.Admission{}
				}
				benchenv.Logf("round %d/%d: %s: %s", r+1, runs, s.Name, sc.name)
				cpu0 := s.CPU()
				out, err := loadgen.Run(ctx, loadgen.Options{
					URL: url, Client: client, Protocol: proto,
					Keys:     func(int) []string { return keys },
					Duration: duration, Workers: sc.workers, Rate: sc.rate, CheckEvery: extra.checkEvery,
				})
				if err != nil {
					return err
				}
				cpu := s.CPU() - cpu0
				settle(s)
				m := res[s.Name+"|"+sc.name]
				if m == nil {
					m = &measure{}
					res[s.Name+"|"+sc.name] = m
				}
				n := len(out.Latencies)
				m.rps = append(m.rps, out.Throughput())
				m.p50 = append(m.p50, msf(out.Percentile(50)))
				m.p99 = append(m.p99, msf(out.Percentile(99)))
				m.max = append(m.max, msf(out.Max()))
				if n > 0 {
					m.cpu = append(m.cpu, msf(cpu)/float64(n))
				}
				m.errors += out.ErrorCount() + out.KeyErrors
				m.overBudget += out.OverBudget
				benchenv.Logf("  %s", out)
			}
		}
	}
	var tbl benchenv.Table
	tbl.Header = []string{"scenario", "server", "requests/s", "p50 ms", "p99 ms", "max ms", "server CPU ms/request", "errors", "over 3 s", "vouch advantage"}
	for _, sc := range scenarios {
		v := res["vouch|"+sc.name]
		for _, s := range servers {
			m := res[s.Name+"|"+sc.name]
			if m == nil {
				continue
			}
			adv := "reference"
			if strings.HasPrefix(s.Name, "vouch-") {
				// A vouch with a config policy: against the plain vouch.
				adv = fmt.Sprintf("throughput %s of vouch's, p99 %s", benchenv.Ratio(benchenv.Median(m.rps), benchenv.Median(v.rps)), benchenv.Ratio(benchenv.Median(m.p99), benchenv.Median(v.p99)))
			} else if sc.admission {
				adv = "(no Ratify equivalent)"
			} else if s.Name != "vouch" {
				if sc.rate > 0 {
					adv = fmt.Sprintf("p99 %s", benchenv.Ratio(benchenv.Median(m.p99), benchenv.Median(v.p99)))
				} else {
					adv = fmt.Sprintf("throughput %s, p99 %s", benchenv.Ratio(benchenv.Median(v.rps), benchenv.Median(m.rps)), benchenv.Ratio(benchenv.Median(m.p99), benchenv.Median(v.p99)))
				}
			}
			tbl.Add(sc.name, s.Name, fmt.Sprintf("%.0f", benchenv.Median(m.rps)), fmt.Sprintf("%.2f", benchenv.Median(m.p50)), fmt.Sprintf("%.2f", benchenv.Median(m.p99)),
				fmt.Sprintf("%.1f", benchenv.Median(m.max)), fmt.Sprintf("%.3f", benchenv.Median(m.cpu)), fmt.Sprint(m.errors), fmt.Sprint(m.overBudget), adv)
		}
	}
	fmt.Print(header)
	fmt.Printf("- load average at end: %s\n- each figure is the median of %d measurements of %v; servers measured one at a time, alternating; the load generator runs on the same %d cores\n- peak RSS: %s\n- answer to one request of %d keys: %s\n\n", benchenv.LoadAvg(), runs, duration, benchenv.Describe().NProc, each(servers, func(s *benchenv.Server) string { return benchenv.MiB(s.PeakRSS()) + " MiB" }), nkeys, each(servers, func(s *benchenv.Server) string { return fmt.Sprint(size[s.Name], " bytes") }))
	fmt.Print(tbl.String())
	fmt.Printf("\n\"vouch advantage\": throughput vouch ÷ ratify, and p99 ratify ÷ vouch (above 1: vouch is ahead). Keys are digest-pinned references (HOST/bench/b3@sha256:…), all verified once before measuring.\n\nServers (REGISTRY is a distribution v3.1.2 process; WORK the scratch folder; logs at their default levels, written to files):\n\n```\n")
	for _, s := range servers {
		fmt.Printf("%s %s\n", s.Name, env.Redact(strings.Join(s.Args, " "), fx.Registry.Host))
	}
	fmt.Printf("```\n")
	return nil
}

// settle waits, up to 15 s, until s is idle (under 5% of a core for a
// quarter of a second): a server that fell behind an open-loop rate works
// off its backlog after the measurement, and would otherwise take the CPU
// from the next server measured.
func settle(s *benchenv.Server) {
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		c0 := s.CPU()
		time.Sleep(250 * time.Millisecond)
		if s.CPU()-c0 < 13*time.Millisecond {
			return
		}
	}
}

// answer returns the body of a Gatekeeper answer for keys from url.
func answer(ctx context.Context, client *http.Client, url string, keys []string) ([]byte, error) {
	body, err := loadgen.Gatekeeper{}.Body(keys)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}

// each joins f of every server, named.
func each(servers []*benchenv.Server, f func(*benchenv.Server) string) string {
	var parts []string
	for _, s := range servers {
		parts = append(parts, s.Name+" "+f(s))
	}
	return strings.Join(parts, ", ")
}

// policyServers starts vouch servers (built with -tags policycode) whose
// config file requires a verified Notary Project signature: as a require
// list (vouch-config), in Rego (vouch-rego) and in CEL (vouch-cel).
func policyServers(env *benchenv.Env, caFile, host string) ([]*benchenv.Server, error) {
	bin, err := env.BuildVouch("policycode")
	if err != nil {
		return nil, err
	}
	dir := env.Dir("policies")
	write := func(name, body string) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, []byte(body), 0o600)
	}
	if _, err := write("trustpolicy.json", `{"version":"1.0","trustPolicies":[{"name":"bench","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:bench"],"trustedIdentities":["*"]}]}`); err != nil {
		return nil, err
	}
	head := fmt.Sprintf(`version: v1
registries: {insecure: [%q]}
trustStores: [{name: "ca:bench", files: [%q]}]
verifiers: [{name: notation, type: notation, notation: {trustPolicy: trustpolicy.json}}]
policy:
  scopes:
    - name: bench
      repositories: ["*"]
`, host, caFile)
	policies := []struct{ name, scope string }{
		{"config", "      require: [{artifactType: application/vnd.cncf.notary.signature}]\n"},
		{"rego", "      rego:\n        inline: |\n          package vouch\n          deny contains \"no verified signature\" if not signed\n          signed if {\n            some r in input.referrers\n            r.artifactType == \"application/vnd.cncf.notary.signature\"\n            r.verified\n          }\n"},
		{"cel", "      cel:\n        validations:\n          - expression: input.referrers.exists(r, r.artifactType == \"application/vnd.cncf.notary.signature\" && r.verified)\n"},
	}
	var out []*benchenv.Server
	for _, p := range policies {
		cfg, err := write(p.name+".yaml", head+p.scope)
		if err != nil {
			return nil, err
		}
		s, err := env.StartVouchBinary("vouch-"+p.name, bin, "--config", cfg)
		if err != nil {
			for _, o := range out {
				o.Stop()
			}
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
