// Command b1 is benchmark B1: one signed image verified by a fresh CLI
// process, vouch against `notation verify` (a notation-signed image),
// `cosign verify` (a cosign-signed image) and `ratify verify` (both), on
// one loopback registry. It prints the median wall time, peak RSS and CPU
// time of each, and the ratio of each peer to vouch.
//
// Usage: go run ./bench/b1 [-runs 11]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/vouch-project/vouch/bench/internal/benchenv"
)

func main() {
	runs := flag.Int("runs", 11, "measured runs of each tool (after one warm-up), interleaved")
	keep := flag.Bool("keep", false, "keep the scratch folder")
	flag.Parse()
	if err := run(*runs, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "b1:", err)
		os.Exit(1)
	}
}

func run(runs int, keep bool) error {
	ctx := context.Background()
	env, fx, closeAll, err := benchenv.Open(keep)
	if err != nil {
		return err
	}
	defer closeAll()
	header := env.Header("B1: one signed image, one CLI process", fmt.Sprintf("go run ./bench/b1 -runs %d", runs))

	if _, err := fx.NotationImage(ctx, "bench/notation", "v1"); err != nil {
		return err
	}
	if _, err := fx.CosignImage(ctx, "bench/cosign", "v1"); err != nil {
		return err
	}
	host := fx.Registry.Host
	jobs := []struct {
		name  string
		tools []*benchenv.Tool
	}{
		{"notation-signed", fx.NotationTools(host + "/bench/notation:v1")},
		{"cosign-signed", fx.CosignTools(host + "/bench/cosign:v1")},
	}
	startup := &benchenv.Tool{Name: "vouch version", Path: env.Bin["vouch"], Args: []string{"version"}}

	var tbl benchenv.Table
	tbl.Header = []string{"image", "tool", "wall ms (median)", "min–max ms", "peak RSS MiB", "CPU ms", "peer/vouch wall", "peer/vouch RSS"}
	var commands []string
	for _, job := range jobs {
		benchenv.Logf("%s: %d interleaved runs of %d tools", job.name, runs, len(job.tools))
		samples, err := benchenv.Interleave(job.tools, runs, nil)
		if err != nil {
			return err
		}
		v := benchenv.Summarize(samples["vouch"])
		for _, t := range job.tools {
			s := benchenv.Summarize(samples[t.Name])
			wr, rr := "1 (reference)", "1 (reference)"
			if t.Name != "vouch" {
				wr = benchenv.Ratio(float64(s.Wall), float64(v.Wall))
				rr = benchenv.Ratio(float64(s.MaxRSS), float64(v.MaxRSS))
			}
			tbl.Add(job.name, t.Name, benchenv.Ms(s.Wall), benchenv.Ms(s.MinWall)+"–"+benchenv.Ms(s.MaxWall), benchenv.MiB(s.MaxRSS), benchenv.Ms(s.CPU), wr, rr)
			commands = append(commands, t.Command())
		}
	}
	samples, err := benchenv.Interleave([]*benchenv.Tool{startup}, runs, nil)
	if err != nil {
		return err
	}
	s := benchenv.Summarize(samples[startup.Name])
	tbl.Add("–", "vouch version (start-up only)", benchenv.Ms(s.Wall), benchenv.Ms(s.MinWall)+"–"+benchenv.Ms(s.MaxWall), benchenv.MiB(s.MaxRSS), benchenv.Ms(s.CPU), "", "")

	fmt.Print(header)
	fmt.Printf("- load average at end: %s\n- runs: %d per tool after one warm-up, interleaved (the first tool rotates each round)\n\n", benchenv.LoadAvg(), runs)
	fmt.Print(tbl.String())
	fmt.Printf("\nRatios above 1 mean vouch is faster or smaller. Ratify's signature cache (localCachePath) is emptied before each of its runs.\n\nCommands (REGISTRY is a distribution v3.1.2 process on 127.0.0.1, no referrers API; WORK the scratch folder):\n\n```\n%s\n```\n", env.Redact(strings.Join(commands, "\n"), host))
	return nil
}
