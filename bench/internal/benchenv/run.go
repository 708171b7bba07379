package benchenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Sample is one measured process run.
type Sample struct {
	// Wall is the time from starting the process to its exit.
	Wall time.Duration
	// MaxRSS is the process's peak resident set size, in bytes.
	MaxRSS int64
	// CPU is the user plus system time the process used.
	CPU time.Duration
}

// Tool is one command under test, run as a fresh process each time.
type Tool struct {
	// Name labels the tool in tables ("vouch", "notation", ...).
	Name string
	// Path is the program; Args its arguments for one run.
	Path string
	Args []string
	// Env is added to the environment.
	Env []string
	// Before runs before each run, outside the measurement (to empty a
	// cache, so that every run is cold). Optional.
	Before func() error
	// Check reads the output and exit error of a run and says whether it
	// verified. Optional; default: exit code 0.
	Check func(stdout, stderr []byte, err error) error
}

// Run runs t once and measures it.
func (t *Tool) Run() (Sample, error) {
	if t.Before != nil {
		if err := t.Before(); err != nil {
			return Sample{}, fmt.Errorf("%s: before: %w", t.Name, err)
		}
	}
	cmd := exec.Command(t.Path, t.Args...)
	cmd.Env = append(os.Environ(), t.Env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	var s Sample
	s.Wall = wall
	if ps := cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			s.MaxRSS = ru.Maxrss * 1024
		}
		s.CPU = ps.UserTime() + ps.SystemTime()
	}
	check := t.Check
	if check == nil {
		check = func(_, _ []byte, err error) error { return err }
	}
	if cerr := check(stdout.Bytes(), stderr.Bytes(), err); cerr != nil {
		return s, fmt.Errorf("%s %s: did not verify: %v\nstdout: %.2000s\nstderr: %.2000s", t.Name, strings.Join(t.Args, " "), cerr, stdout.String(), stderr.String())
	}
	return s, nil
}

// BeforeEach makes every tool call f just before each of its runs, after
// its own Before (to zero a proxy's counts), and returns tools.
func BeforeEach(tools []*Tool, f func()) []*Tool {
	for _, t := range tools {
		prev := t.Before
		t.Before = func() error {
			if prev != nil {
				if err := prev(); err != nil {
					return err
				}
			}
			f()
			return nil
		}
	}
	return tools
}

// Command returns t's command line, for the results.
func (t *Tool) Command() string {
	var env []string
	for _, e := range t.Env {
		if !strings.HasPrefix(e, "HOME=") {
			env = append(env, e)
		}
	}
	parts := append(env, shortPath(t.Path))
	for _, a := range t.Args {
		if strings.ContainsAny(a, " \t\"'") {
			a = fmt.Sprintf("%q", a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

func shortPath(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[i+1:]
	}
	return p
}

// RatifyCheck reads `ratify verify`'s JSON: it exits 0 even when
// verification fails, so isSuccess is what counts.
func RatifyCheck(stdout, _ []byte, err error) error {
	if err != nil {
		return err
	}
	i := bytes.IndexByte(stdout, '{')
	if i < 0 {
		return fmt.Errorf("no JSON in ratify's output")
	}
	var r struct {
		IsSuccess bool `json:"isSuccess"`
	}
	if err := json.NewDecoder(bytes.NewReader(stdout[i:])).Decode(&r); err != nil {
		return fmt.Errorf("decode ratify's output: %w", err)
	}
	if !r.IsSuccess {
		return fmt.Errorf("isSuccess is false")
	}
	return nil
}

// Interleave runs every tool once per round, rounds times, rotating which
// tool goes first, after one discarded warm-up run each; it returns the
// samples by tool name. measure, when set, is called after each run (to
// read proxy counts) with the tool and its run's index.
func Interleave(tools []*Tool, rounds int, after func(t *Tool, round int)) (map[string][]Sample, error) {
	for _, t := range tools {
		if _, err := t.Run(); err != nil {
			return nil, err
		}
	}
	out := map[string][]Sample{}
	for r := 0; r < rounds; r++ {
		for j := range tools {
			t := tools[(r+j)%len(tools)]
			s, err := t.Run()
			if err != nil {
				return nil, err
			}
			out[t.Name] = append(out[t.Name], s)
			if after != nil {
				after(t, r)
			}
		}
	}
	return out, nil
}

// Stats are the medians of samples.
type Stats struct {
	Wall, CPU time.Duration
	MaxRSS    int64
	// MinWall and MaxWall show the spread.
	MinWall, MaxWall time.Duration
	N                int
}

// Summarize returns the medians of samples.
func Summarize(samples []Sample) Stats {
	var walls, cpus []time.Duration
	var rss []int64
	for _, s := range samples {
		walls = append(walls, s.Wall)
		cpus = append(cpus, s.CPU)
		rss = append(rss, s.MaxRSS)
	}
	st := Stats{Wall: Median(walls), CPU: Median(cpus), MaxRSS: Median(rss), N: len(samples)}
	if len(walls) > 0 {
		st.MinWall, st.MaxWall = slices.Min(walls), slices.Max(walls)
	}
	return st
}

// Median returns the median of xs (the mean of the middle two for an even
// count); zero for none.
func Median[T ~int64 | ~int | ~float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Ms formats d in milliseconds with one decimal.
func Ms(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond))
}

// MiB formats bytes in MiB with one decimal.
func MiB(b int64) string {
	return fmt.Sprintf("%.1f", float64(b)/(1<<20))
}

// Ratio formats peer/vouch as "×N.NN" (above 1: vouch is faster or
// smaller).
func Ratio(peer, vouch float64) string {
	if vouch == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", peer/vouch)
}

// Table is a markdown table.
type Table struct {
	Header []string
	Rows   [][]string
}

// Add appends a row.
func (t *Table) Add(cells ...string) { t.Rows = append(t.Rows, cells) }

// String renders t as markdown.
func (t *Table) String() string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(t.Header, " | ") + " |\n")
	seps := make([]string, len(t.Header))
	for i := range seps {
		seps[i] = "---"
	}
	b.WriteString("|" + strings.Join(seps, "|") + "|\n")
	for _, r := range t.Rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}
