// Command profile runs vouch's server in process, wired as `vouch serve
// --notation-cert CA --plain-http` wires it (registry store, notation
// verifier, default policy, in-memory cache, HTTPS), drives it with the
// load generator and writes CPU and allocation profiles (pprof) of one
// scenario, then prints their top functions. It exists to explain the
// figures of B3 (warm) and B4/B5 (cold): `vouch serve` has no pprof
// endpoint of its own.
//
// Scenario audit profiles nothing: it measures the registry requests of
// vouch serve's audit loop (audit.go).
//
// Usage: go run ./bench/profile [-scenario warm|cold|replay|audit] [-duration 10s] [-out DIR]
//
//	[-registry-concurrency N] [-tag-ttl D] [-tag-max-stale D] [-linger D] [-images N] [-log-level L]
//	[-audits N] [-speedup K] [-by-tag]
//
//	go tool pprof -top -nodecount 40 DIR/cpu.pprof
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/bench/delayproxy"
	"github.com/vouch-project/vouch/bench/internal/benchenv"
	"github.com/vouch-project/vouch/bench/loadgen"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/server"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/notation"
)

func main() {
	scenario := flag.String("scenario", "warm", "warm: 10 cached images per request, 16 clients; cold: 10 new images per request through a 20 ms delay proxy; replay: B4's replay (Zipf over -images, 50 pods/s, 20 ms delay) for -duration; audit: registry requests of the audit loop over -images running images")
	duration := flag.Duration("duration", 10*time.Second, "length of the profiled load")
	out := flag.String("out", "bench/results/profiles", "folder for cpu.pprof and allocs.pprof")
	flag.IntVar(&knobs.maxConcurrency, "registry-concurrency", 0, "registry.Options.MaxConcurrency (requests in flight per registry host; 0: vouch's default)")
	flag.DurationVar(&knobs.tagTTL, "tag-ttl", 0, "engine and registry tag TTL (0: vouch's default)")
	flag.DurationVar(&knobs.tagMaxStale, "tag-max-stale", 0, "engine.Options.TagMaxStale: serve a cached tag digest this long while refreshing it (0: vouch's default; negative: not past the tag TTL)")
	flag.DurationVar(&knobs.linger, "linger", 0, "engine.Options.Linger")
	flag.IntVar(&knobs.images, "images", 500, "distinct images for the replay and audit scenarios")
	flag.TextVar(&knobs.logLevel, "log-level", slog.LevelInfo, "level of the server's log (written to a temporary file, as B3 does)")
	flag.IntVar(&auditKnobs.audits, "audits", 2, "audit scenario: audits measured after the first")
	flag.Float64Var(&auditKnobs.speedup, "speedup", 10, "audit scenario: run time this many times faster than the defaults (interval, audit rate and cache TTLs scaled together)")
	flag.BoolVar(&auditKnobs.byTag, "by-tag", false, "audit scenario: the Pods report no running digest, so the audit resolves each tag")
	flag.Parse()
	if *scenario == "audit" {
		auditKnobs.images = knobs.images
		if err := runAudit(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*scenario, *duration, *out); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
}

// knobs are the engine and store settings the replay scenario varies.
var knobs struct {
	maxConcurrency              int
	tagTTL, tagMaxStale, linger time.Duration
	images                      int
	logLevel                    slog.Level
}

func run(scenario string, duration time.Duration, out string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env, fx, closeAll, err := benchenv.Open(false)
	if err != nil {
		return err
	}
	defer closeAll()

	host := fx.Registry.Host
	var keys [][]string
	nreq := 1
	var proxy *delayproxy.Server
	if scenario == "cold" || scenario == "replay" {
		// Registry requests cost 20 ms, as in B2 and B4.
		var err error
		if proxy, err = fx.Registry.Proxy(20*time.Millisecond, 0); err != nil {
			return err
		}
		defer proxy.Close()
		host = proxy.Host
	}
	switch scenario {
	case "replay":
		// B4's workload, smaller: pods of 10 tag references drawn by Zipf
		// (s=1.1) from knobs.images images, 50 pods/s.
		nreq = int(50 * duration.Seconds())
		var refs []string
		benchenv.Logf("pushing %d signed images", knobs.images)
		for i := 0; i < knobs.images; i++ {
			repo, tag := fmt.Sprintf("bench/replay-%03d", i/10), fmt.Sprintf("v%d", i%10)
			if _, err := fx.NotationImage(ctx, repo, tag); err != nil {
				return err
			}
			refs = append(refs, fmt.Sprintf("%s/%s:%s", host, repo, tag))
		}
		rng := rand.New(rand.NewPCG(7, 7))
		z := rand.NewZipf(rng, 1.1, 1, uint64(len(refs)-1))
		for i := 0; i < nreq; i++ {
			seen := map[uint64]bool{}
			var ks []string
			for len(ks) < 10 {
				if k := z.Uint64(); !seen[k] {
					seen[k] = true
					ks = append(ks, refs[k])
				}
			}
			keys = append(keys, ks)
		}
	default:
		if scenario == "cold" {
			// Enough distinct images for every request to be cold.
			nreq = 60
		}
		benchenv.Logf("pushing %d signed images", nreq*10)
		for i := 0; i < nreq; i++ {
			var ks []string
			for j := 0; j < 10; j++ {
				desc, err := fx.NotationImage(ctx, "bench/profile", fmt.Sprintf("r%dk%d", i, j))
				if err != nil {
					return err
				}
				ks = append(ks, fmt.Sprintf("%s/bench/profile@%s", host, desc.Digest))
			}
			keys = append(keys, ks)
		}
	}

	// The wiring of cmd/vouch/serve.go for --notation-cert and --plain-http.
	nv, err := notation.New(notation.Options{
		Name:        "notation",
		TrustPolicy: notation.QuickTrustPolicy("vouch-cli"),
		TrustStores: notation.TrustStores{Files: map[string][]string{
			"ca:vouch-cli":               {fx.Signer.CAFile},
			"signingAuthority:vouch-cli": {fx.Signer.CAFile},
		}},
	})
	if err != nil {
		return err
	}
	metrics := server.NewMetrics()
	st, err := registry.New(registry.Options{PlainHTTP: true, OnResponse: metrics.RegistryResponse, MaxConcurrency: knobs.maxConcurrency, TagTTL: knobs.tagTTL})
	if err != nil {
		return err
	}
	exec := &vouch.Executor{Store: st, Verifiers: []vouch.Verifier{metrics.Verifier(nv)}, Policy: policy.Default([]string{"notation"})}
	// vouch serve's default: JSON lines at info, here into a file as B3
	// writes them.
	logFile, err := os.CreateTemp("", "vouch-profile-*.log")
	if err != nil {
		return err
	}
	defer os.Remove(logFile.Name())
	defer logFile.Close()
	logger := server.NewLogger(logFile, knobs.logLevel)
	var eng *engine.Engine
	eng, err = engine.New(engine.Options{
		Executor:    func(context.Context, string) (*vouch.Executor, string) { return exec, "profile" },
		Hooks:       metrics.EngineHooks(func() int64 { return eng.InFlight() }),
		Logger:      logger,
		TagTTL:      knobs.tagTTL,
		TagMaxStale: knobs.tagMaxStale,
		Linger:      knobs.linger,
	})
	if err != nil {
		return err
	}
	tlsDir, err := env.TLSDir()
	if err != nil {
		return err
	}
	srv, err := server.New(server.Options{
		TLS:     server.TLSFiles{CertFile: filepath.Join(tlsDir, "tls.crt"), KeyFile: filepath.Join(tlsDir, "tls.key")},
		Decider: eng,
		Metrics: metrics,
		Logger:  logger,
	})
	if err != nil {
		return err
	}
	srv.SetReady(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.Serve(ctx, ln) //nolint:errcheck // ends with ctx
	url := "https://" + ln.Addr().String() + "/gatekeeper/v1/verify"
	client, err := env.Client(64)
	if err != nil {
		return err
	}
	if scenario == "warm" {
		if _, err := loadgen.CheckSuccess(ctx, client, url, keys[0]); err != nil {
			return err
		}
	}

	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	cpuPath := filepath.Join(out, scenario+"-cpu.pprof")
	f, err := os.Create(cpuPath)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	opts := loadgen.Options{URL: url, Client: client, Protocol: loadgen.Gatekeeper{}, Duration: duration}
	if proxy != nil {
		proxy.Reset()
	}
	if scenario == "warm" {
		opts.Workers = 16
		opts.Keys = func(int) []string { return keys[0] }
	} else {
		// One request of 10 new images every duration/nreq.
		opts.Requests = nreq
		opts.Rate = float64(nreq) / duration.Seconds()
		opts.Keys = func(i int) []string { return keys[i] }
	}
	res, err := loadgen.Run(ctx, opts)
	pprof.StopCPUProfile()
	f.Close()
	if err != nil {
		return err
	}
	allocPath := filepath.Join(out, scenario+"-allocs.pprof")
	af, err := os.Create(allocPath)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(af, 0); err != nil {
		return err
	}
	af.Close()
	fmt.Printf("scenario %s (registry concurrency %d, tag TTL %v, tag max stale %v, linger %v): %s\n", scenario, knobs.maxConcurrency, knobs.tagTTL, knobs.tagMaxStale, knobs.linger, res)
	if proxy != nil {
		fmt.Printf("registry requests: %s\n", proxy.Counts())
	}
	fmt.Printf("unverified pods (failed, over 3 s or a key error): %d of %d\n\n", res.Unverified, res.Sent)
	for _, p := range []string{cpuPath, allocPath} {
		top := exec_("go", "tool", "pprof", "-top", "-nodecount", "35", p)
		fmt.Printf("%s:\n%s\n", p, top)
	}
	return nil
}

func exec_(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%v: %s", err, out)
	}
	return string(out)
}
