package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/audit"
	"github.com/vouch-project/vouch/bench/internal/benchenv"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/notation"
)

// The audit's defaults, server/kube's DefaultAuditInterval and
// DefaultAuditRate (not imported: that package brings client-go).
const (
	auditInterval = 10 * time.Minute
	auditRate     = 5.0
)

// auditKnobs are the settings of the audit scenario.
var auditKnobs struct {
	images, audits int
	speedup        float64
	byTag          bool
}

// runAudit measures the registry requests of vouch serve's audit loop
// (--audit-interval) for auditKnobs.images running images: the audit's
// own code (audit.Run with the server's engine as its Verify, paced at
// the audit rate, two at a time, as server/kube's Auditor runs it) over
// images already verified once, through the 20 ms delay proxy, which
// counts the requests. Time runs speedup times faster than in a server
// with the defaults: the interval, the audit rate and every cache TTL are
// scaled together, so that each audit finds the caches as it would at
// the defaults, and the requests per audit are those of the defaults.
// Per hour: requests per audit times the audits an hour holds at the
// defaults (an audit starts Interval after the previous one ended).
func runAudit(ctx context.Context) error {
	env, fx, closeAll, err := benchenv.Open(false)
	if err != nil {
		return err
	}
	defer closeAll()
	_ = env // the fixture's
	proxy, err := fx.Registry.Proxy(20*time.Millisecond, 0)
	if err != nil {
		return err
	}
	defer proxy.Close()

	n := auditKnobs.images
	benchenv.Logf("pushing and signing %d images", n)
	type image struct {
		ref string
		d   digest.Digest
	}
	images := make([]image, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				repo, tag := fmt.Sprintf("bench/audit-%03d", i/10), fmt.Sprintf("v%d", i%10)
				desc, err := fx.NotationImage(ctx, repo, tag)
				if err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					continue
				}
				images[i] = image{ref: fmt.Sprintf("%s/%s:%s", proxy.Host, repo, tag), d: desc.Digest}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	// Deployments of 10 containers each, as running Pods report them:
	// the image as the Pod names it, and the digest the node runs.
	var workloads []audit.Workload
	for i := 0; i < n; i += 10 {
		w := audit.Workload{Namespace: "bench", Kind: "Deployment", Name: fmt.Sprintf("app-%03d", i/10), Pods: 1}
		for j := i; j < min(i+10, n); j++ {
			c := audit.Container{Container: fmt.Sprintf("c%d", j-i), Image: images[j].ref}
			if !auditKnobs.byTag {
				c.Running = images[j].d
			}
			w.Containers = append(w.Containers, c)
		}
		workloads = append(workloads, w)
	}

	// vouch serve's wiring for --notation-cert and --plain-http, with its
	// defaults scaled by speedup.
	k := auditKnobs.speedup
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) / k) }
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
	st, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		return err
	}
	exec := &vouch.Executor{Store: st, Verifiers: []vouch.Verifier{nv}, Policy: policy.Default([]string{"notation"})}
	eng, err := engine.New(engine.Options{
		Executor:    func(context.Context, string) (*vouch.Executor, string) { return exec, "audit" },
		AllowTTL:    scale(engine.DefaultAllowTTL),
		DenyTTL:     scale(engine.DefaultDenyTTL),
		TagTTL:      scale(engine.DefaultTagTTL),
		TagMaxStale: scale(engine.DefaultTagMaxStale),
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		return err
	}
	interval, rate := scale(auditInterval), auditRate*k
	auditOnce := func() (*audit.Report, error) {
		pace := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer pace.Stop()
		return audit.Run(ctx, workloads, audit.Options{
			Verify:   eng.Verify,
			Parallel: 2,
			Wait: func(ctx context.Context) error {
				select {
				case <-pace.C:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			},
		})
	}

	var tbl benchenv.Table
	tbl.Header = []string{"audit", "verified", "verdict", "wall s", "registry requests"}
	var steady []int
	var walls []time.Duration
	for i := 0; i <= auditKnobs.audits; i++ {
		if i > 0 {
			time.Sleep(interval)
		}
		proxy.Reset()
		start := time.Now()
		r, err := auditOnce()
		if err != nil {
			return err
		}
		wall := time.Since(start)
		c := proxy.Counts()
		name := fmt.Sprint(i)
		if i == 0 {
			name = "0 (cold: the images' first verification, as admission would have made it)"
		} else {
			steady = append(steady, c.Total)
			walls = append(walls, wall)
		}
		benchenv.Logf("audit %d: %d verified, %s, %v; registry %s", i, r.Verified, r.Verdict, wall.Round(time.Millisecond), c)
		tbl.Add(name, fmt.Sprint(r.Verified), string(r.Verdict), fmt.Sprintf("%.1f", wall.Seconds()), fmt.Sprintf("%d (%s)", c.Total, c.Detail()))
	}
	perAudit := benchenv.Median(steady)
	// At the defaults an audit is paced by the rate, unless its
	// verifications take longer than that (which speedup does not
	// scale: an audit slower than n/(rate×speedup) here was bound by
	// them).
	wallDefault := max(benchenv.Median(walls), time.Duration(float64(n)/auditRate*float64(time.Second)))
	cycle := wallDefault + auditInterval
	perHour := float64(perAudit) * float64(time.Hour) / float64(cycle)
	running := "running digests reported (audit verifies by digest)"
	if auditKnobs.byTag {
		running = "no running digests (audit resolves each tag)"
	}
	fmt.Printf("## Audit loop: registry requests for %d running images\n\n- command: `go run ./bench/profile -scenario audit -images %d -audits %d -speedup %g%s`\n- load average at end: %s\n- %s; %d Deployments of 10 containers; registry delay 20 ms\n- scaled by %g: interval %v, rate %g/s, verdict TTL %v, tag TTL %v, tag max stale %v (defaults: 10m, 5/s, 5m, 10s, 5m)\n\n%s\n",
		n, n, auditKnobs.audits, k, map[bool]string{true: " -by-tag", false: ""}[auditKnobs.byTag], benchenv.LoadAvg(), running, len(workloads), k, interval, rate, scale(engine.DefaultAllowTTL), scale(engine.DefaultTagTTL), scale(engine.DefaultTagMaxStale), tbl.String())
	fmt.Printf("\nRequests per audit after the first (median): %d. At the defaults an audit takes about %v and the next starts %v after it ends: %.2f audits an hour, **%.0f registry requests per hour** for %d running images.\n",
		perAudit, wallDefault.Round(time.Second), auditInterval, float64(time.Hour)/float64(cycle), perHour, n)
	return nil
}
