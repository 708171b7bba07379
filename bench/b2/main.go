// Command b2 is benchmark B2: cold verification when every registry
// request costs a round trip. Each tool reaches the registry through a
// loopback proxy that delays every request (20 ms by default) and counts
// requests by kind; the table shows wall time and requests against the
// floor: the fewest requests the job needs, and the fewest sequential
// ones times the delay.
//
// Usage: go run ./bench/b2 [-delay 20ms] [-runs 7] [-trace]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vouch-project/vouch/bench/delayproxy"
	"github.com/vouch-project/vouch/bench/internal/benchenv"
	"github.com/vouch-project/vouch/internal/testbed"
)

func main() {
	delay := flag.Duration("delay", 20*time.Millisecond, "delay the proxy adds to every registry request")
	runs := flag.Int("runs", 7, "measured runs of each tool (after one warm-up), interleaved")
	trace := flag.Bool("trace", false, "print each tool's requests (last run) with their start times")
	keep := flag.Bool("keep", false, "keep the scratch folder")
	flag.Parse()
	if err := run(*delay, *runs, *trace, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "b2:", err)
		os.Exit(1)
	}
}

// job is one verification task with its floor.
type job struct {
	name string
	// floorRequests is the fewest registry requests the job needs;
	// floorRounds the fewest sequential ones.
	floorRequests, floorRounds int
	floorNote                  string
	tools                      []*benchenv.Tool
}

func run(delay time.Duration, runs int, trace, keep bool) error {
	ctx := context.Background()
	env, fx, closeAll, err := benchenv.Open(keep)
	if err != nil {
		return err
	}
	defer closeAll()
	header := env.Header("B2: cold verification through a registry delay proxy", fmt.Sprintf("go run ./bench/b2 -delay %v -runs %d", delay, runs))

	// Artifacts are pushed straight to the registry; the tools read them
	// through the proxy.
	if _, err := fx.NotationImage(ctx, "bench/notation", "v1"); err != nil {
		return err
	}
	if _, err := fx.CosignImage(ctx, "bench/cosign", "v1"); err != nil {
		return err
	}
	// Ten distinct images, the first with two signatures: 11 signatures.
	for i := 0; i < 10; i++ {
		desc, err := fx.NotationImage(ctx, "bench/ten", fmt.Sprintf("v%d", i))
		if err != nil {
			return err
		}
		if i == 0 {
			r, _ := testbed.Repo(fx.Registry.Host, "bench/ten")
			if err := fx.Signer.Sign(ctx, r, desc); err != nil {
				return err
			}
		}
	}
	proxy, err := delayproxy.New(delayproxy.Options{Target: mustURL("http://" + fx.Registry.Host), Delay: delay, Log: true})
	if err != nil {
		return err
	}
	srv, err := delayproxy.Listen(proxy)
	if err != nil {
		return err
	}
	defer srv.Close()
	host := srv.Host

	var tenRefs []string
	for i := 0; i < 10; i++ {
		tenRefs = append(tenRefs, fmt.Sprintf("%s/bench/ten:v%d", host, i))
	}
	tenVouch := fx.NotationTools(tenRefs[0])[0]
	tenVouch.Args = append(tenVouch.Args[:len(tenVouch.Args)-1], tenRefs...)
	jobs := []job{
		{
			name: "1 notation-signed image", floorRequests: 5, floorRounds: 4,
			floorNote: "resolve the tag; probe the referrers API and read the sha256-<hex> referrers tag (concurrently); the signature manifest; its envelope blob",
			tools:     fx.NotationTools(host + "/bench/notation:v1"),
		},
		{
			name: "1 cosign-signed image", floorRequests: 3, floorRounds: 3,
			floorNote: "resolve the tag; cosign's sha256-<hex>.sig manifest; its payload blob (a tool that also looks for OCI 1.1 referrers, as vouch does, adds 2 requests in parallel with the .sig read)",
			tools:     fx.CosignTools(host + "/bench/cosign:v1"),
		},
		{
			name: "10 notation-signed images (11 signatures), one vouch process", floorRequests: 43, floorRounds: 4,
			floorNote: "10 resolves, 1 referrers API probe, 10 referrers tags, 11 signature manifests, 11 envelope blobs; 4 rounds when the images are verified concurrently",
			tools:     []*benchenv.Tool{tenVouch},
		},
	}

	type row struct {
		job   job
		tool  string
		stats benchenv.Stats
		reqs  []int
		depth []float64
		last  delayproxy.Counts
		log   []delayproxy.Request
	}
	var rows []*row
	var commands []string
	for _, j := range jobs {
		benchenv.Logf("%s: %d interleaved runs of %d tools", j.name, runs, len(j.tools))
		byTool := map[string]*row{}
		for _, t := range j.tools {
			r := &row{job: j, tool: t.Name}
			byTool[t.Name] = r
			rows = append(rows, r)
			commands = append(commands, t.Command())
		}
		// Reset the proxy's counts just before each run.
		samples, err := benchenv.Interleave(benchenv.BeforeEach(j.tools, proxy.Reset), runs, func(t *benchenv.Tool, _ int) {
			r := byTool[t.Name]
			c := proxy.Counts()
			r.reqs = append(r.reqs, c.Total)
			r.last = c
			r.log = proxy.Requests()
			r.depth = append(r.depth, float64(busy(r.log))/float64(delay))
		})
		if err != nil {
			return err
		}
		for name, r := range byTool {
			r.stats = benchenv.Summarize(samples[name])
		}
	}

	var tbl benchenv.Table
	tbl.Header = []string{"job", "tool", "wall ms (median)", "min–max ms", "requests", "floor requests", "registry-bound ms ÷ delay", "floor rounds", "floor ms", "wall ÷ floor", "peer/vouch wall", "requests by kind"}
	vouchWall := map[string]time.Duration{}
	for _, r := range rows {
		if r.tool == "vouch" {
			vouchWall[r.job.name] = r.stats.Wall
		}
	}
	for _, r := range rows {
		floor := time.Duration(r.job.floorRounds) * delay
		ratio := "1 (reference)"
		if r.tool != "vouch" {
			ratio = benchenv.Ratio(float64(r.stats.Wall), float64(vouchWall[r.job.name]))
		}
		tbl.Add(r.job.name, r.tool, benchenv.Ms(r.stats.Wall), benchenv.Ms(r.stats.MinWall)+"–"+benchenv.Ms(r.stats.MaxWall),
			fmt.Sprint(benchenv.Median(r.reqs)), fmt.Sprint(r.job.floorRequests),
			fmt.Sprintf("%.1f", benchenv.Median(r.depth)), fmt.Sprint(r.job.floorRounds), benchenv.Ms(floor),
			fmt.Sprintf("%.2f", float64(r.stats.Wall)/float64(floor)), ratio, r.last.Detail())
	}
	fmt.Print(header)
	fmt.Printf("- load average at end: %s\n- delay per registry request: %v; runs: %d per tool after one warm-up, interleaved; every run cold (a new process; Ratify's signature cache emptied)\n\n", benchenv.LoadAvg(), delay, runs)
	fmt.Print(tbl.String())
	fmt.Printf("\n\"registry-bound ms ÷ delay\" is the time at least one registry request was in flight, divided by the delay: the number of sequential round trips the tool waited for. \"wall ÷ floor\" compares the whole process, start-up included, with the floor's round trips alone.\n\nFloors:\n\n")
	for _, j := range jobs {
		fmt.Printf("- %s: %d requests, %d rounds: %s.\n", j.name, j.floorRequests, j.floorRounds, j.floorNote)
	}
	fmt.Printf("\nCommands (REGISTRY is the delay proxy in front of a distribution v3.1.2 process on 127.0.0.1, no referrers API; WORK the scratch folder):\n\n```\n%s\n```\n", env.Redact(strings.Join(commands, "\n"), host))
	if trace {
		for _, r := range rows {
			fmt.Printf("\n%s, %s, last run's requests (ms after the first):\n\n```\n", r.job.name, r.tool)
			for _, q := range r.log {
				fmt.Printf("%7.1f %7.1f %s %-9s %d %s\n", ms(q.Start.Sub(r.log[0].Start)), ms(q.End.Sub(r.log[0].Start)), q.Method, q.Kind, q.Status, shortPath(q.Path))
			}
			fmt.Println("```")
		}
	}
	return nil
}

// busy returns the time at least one of reqs was in flight (the union of
// their intervals).
func busy(reqs []delayproxy.Request) time.Duration {
	iv := slices.Clone(reqs)
	slices.SortFunc(iv, func(a, b delayproxy.Request) int { return a.Start.Compare(b.Start) })
	var total time.Duration
	var curStart, curEnd time.Time
	for _, r := range iv {
		end := r.End
		if end.IsZero() {
			continue
		}
		if curEnd.IsZero() || r.Start.After(curEnd) {
			total += curEnd.Sub(curStart)
			curStart, curEnd = r.Start, end
			continue
		}
		if end.After(curEnd) {
			curEnd = end
		}
	}
	total += curEnd.Sub(curStart)
	return total
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func shortPath(p string) string {
	// Shorten digests for the trace, keeping what follows them (".sig").
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if len(s) > 40 && (strings.HasPrefix(s, "sha256:") || strings.HasPrefix(s, "sha256-")) {
			parts[i] = s[:19] + "…" + s[71:]
		}
	}
	return strings.Join(parts, "/")
}
