// Command b1 is benchmark B1: one signed image verified by a fresh CLI
// process, vouch against `notation verify` (a notation-signed image),
// `cosign verify` (a cosign-signed image) and `ratify verify` (both), on
// one loopback registry. It prints the median wall time, peak RSS and CPU
// time of each, and the ratio of each peer to vouch.
//
// Two more rows put vouch's figures in context: vouch built as hack/image
// builds it (CGO_ENABLED=0, -trimpath, -ldflags "-s -w"; vouch and the
// peers are otherwise built by a plain go build / go install), and the
// floor (bench/b1/floor): a Go program that makes vouch's five registry
// requests for the notation-signed image and nothing else.
//
// Usage: go run ./bench/b1 [-runs 11]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	release, err := goBuild(env, "vouch-release", []string{"CGO_ENABLED=0"}, "-trimpath", "-ldflags=-s -w", "./cmd/vouch")
	if err != nil {
		return err
	}
	floor, err := goBuild(env, "floor", nil, "./bench/b1/floor")
	if err != nil {
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
	for i := range jobs {
		v := *jobs[i].tools[0] // vouch
		v.Name, v.Path = "vouch (release build)", release
		jobs[i].tools = append(jobs[i].tools, &v)
	}
	jobs[0].tools = append(jobs[0].tools, &benchenv.Tool{Name: "floor (5 GETs, no verification)", Path: floor, Args: []string{host + "/bench/notation:v1"}})
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
			if t.Path != release {
				commands = append(commands, t.Command())
			}
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
	fmt.Printf("\nvouch (release build) is vouch built with `CGO_ENABLED=0 go build -trimpath -ldflags=\"-s -w\"` (as hack/image builds it, without its build tags); every other program with a plain go build / go install. The floor is bench/b1/floor: the five registry requests vouch makes for the notation-signed image, digests checked, no verification.\n")
	fmt.Printf("\nRatios above 1 mean vouch is faster or smaller. Ratify's signature cache (localCachePath) is emptied before each of its runs.\n\nCommands (REGISTRY is a distribution v3.1.2 process on 127.0.0.1, no referrers API; WORK the scratch folder):\n\n```\n%s\n```\n", env.Redact(strings.Join(commands, "\n"), host))
	return nil
}

// goBuild builds pkg (with the go build flags in args before it) into the
// scratch folder's bin as name, with env added to the environment.
func goBuild(env *benchenv.Env, name string, environ []string, args ...string) (string, error) {
	out := filepath.Join(env.Dir("bin"), name)
	benchenv.Logf("building %s", name)
	cmd := exec.Command("go", append([]string{"build", "-o", out}, args...)...)
	cmd.Dir = env.Root
	cmd.Env = append(os.Environ(), environ...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out, nil
}
