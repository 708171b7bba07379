// Command soak is the fault suite's long run: every fault of test/fault
// (Toxiproxy between vouch and its registry and Redis, a hostile registry,
// certificates rotated and the configuration reloaded under load) held for
// -seconds each with 16 clients, the table docs/reliability.md records.
// The suite itself, with 3 s per fault, runs in CI (TestFaults); this runs
// its benchmark, BenchmarkSoak, which asserts the same things: 0 wrong
// allows, 0 answers past the budget, 0 unanswered, no leaked goroutines,
// a bounded resident set.
//
// Usage: go run ./bench/soak [-seconds 30]
//
// It installs the testbed's tools (hack/testbed.sh) when they are missing.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

func main() {
	seconds := flag.Int("seconds", 30, "how long each fault is held under load")
	flag.Parse()
	if err := run(*seconds); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(seconds int) error {
	if seconds < 1 {
		return fmt.Errorf("-seconds %d: at least 1", seconds)
	}
	out, err := exec.Command("bash", "hack/testbed.sh", "--print").Output()
	if err != nil {
		return fmt.Errorf("hack/testbed.sh (run from the repository root): %w", err)
	}
	bin := strings.TrimSpace(string(out))
	// 19 faults, each held for seconds, plus recovery between them.
	timeout := fmt.Sprintf("%dm", 10+seconds*19*2/60)
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^BenchmarkSoak$", "-benchtime", "1x",
		"-timeout", timeout, "./test/fault")
	cmd.Env = append(os.Environ(), "VOUCH_TESTBED_BIN="+bin, "PATH="+bin+":"+os.Getenv("PATH"),
		"VOUCH_SOAK_SECONDS="+strconv.Itoa(seconds))
	var stderr bytes.Buffer
	cmd.Stdout = os.Stdout
	cmd.Stderr = &stderr
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average before: %s", load)
	}
	err = cmd.Run()
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average after: %s", load)
	}
	if err != nil {
		os.Stderr.Write(stderr.Bytes())
		return fmt.Errorf("the soak failed: %w", err)
	}
	return nil
}
