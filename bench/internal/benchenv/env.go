// Package benchenv sets up what every benchmark needs: the peers (built
// by bench/peers.sh into caches outside the repository), vouch built from
// the working tree, a distribution registry process on 127.0.0.1, signed
// artifacts, measured process runs, medians and markdown tables. The
// processes, registries, pushes and signatures come from internal/testbed,
// which vouch's tests share; what is here is what only the benchmarks need
// (the peers' configuration, servers under load, measurements, tables).
package benchenv

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/vouch-project/vouch/internal/testbed"
)

// Env is one benchmark run's tools and scratch folder.
type Env struct {
	// Root is the repository root.
	Root string
	// Work is a scratch folder removed by Close.
	Work string
	// Bin maps a program name (vouch, registry, notation, cosign, ratify,
	// gnuplot, redis-server) to its path.
	Bin map[string]string
	// Commit is the commit of the working tree, with "+dirty" when it has
	// changes.
	Commit string
	// Keep, when true, leaves Work in place on Close (for debugging).
	Keep bool
	// VouchEnv is added to the environment of every vouch serve that
	// StartVouch starts (GOMEMLIMIT=..., for instance). Optional.
	VouchEnv []string
}

// Logf logs progress to standard error (the tables go to standard output).
func Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// Setup finds the repository, installs the peers, builds vouch and makes
// a scratch folder.
func Setup() (*Env, error) {
	root, err := testbed.ModuleRoot()
	if err != nil {
		return nil, fmt.Errorf("run the benchmarks from inside the vouch repository: %w", err)
	}
	work, err := os.MkdirTemp("", "vouch-bench-")
	if err != nil {
		return nil, err
	}
	e := &Env{Root: root, Work: work, Bin: map[string]string{}}
	Logf("installing peers (bench/peers.sh)")
	cmd := exec.Command(filepath.Join(root, "bench", "peers.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("bench/peers.sh: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if name, path, ok := strings.Cut(sc.Text(), "="); ok {
			e.Bin[name] = path
		}
	}
	Logf("building vouch from %s", root)
	vouch := filepath.Join(work, "vouch")
	if err := testbed.BuildVouch(vouch); err != nil {
		return nil, fmt.Errorf("build vouch: %w", err)
	}
	e.Bin["vouch"] = vouch
	e.Commit = commit(root)
	return e, nil
}

// BuildVouch builds vouch with the build tags given into the scratch
// folder, once per set of tags, and returns its path: e.Bin["vouch"] is the
// default build, which the CLI benchmarks measure.
func (e *Env) BuildVouch(tags ...string) (string, error) {
	name := "vouch-" + strings.Join(tags, "-")
	if p := e.Bin[name]; p != "" {
		return p, nil
	}
	Logf("building vouch with -tags %s", strings.Join(tags, ","))
	p := filepath.Join(e.Dir("bin"), name)
	if err := testbed.BuildVouch(p, tags...); err != nil {
		return "", fmt.Errorf("build vouch: %w", err)
	}
	e.Bin[name] = p
	return p, nil
}

// Need fails unless every named program is installed.
func (e *Env) Need(names ...string) error {
	for _, n := range names {
		if e.Bin[n] == "" {
			return fmt.Errorf("%s is not installed (see bench/peers.sh)", n)
		}
	}
	return nil
}

// Dir returns a new folder under Work.
func (e *Env) Dir(name string) string {
	d := filepath.Join(e.Work, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		panic(err)
	}
	return d
}

// Close removes Work unless Keep is set.
func (e *Env) Close() {
	if e.Keep {
		Logf("kept %s", e.Work)
		return
	}
	os.RemoveAll(e.Work)
}

func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	st, _ := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	if len(bytes.TrimSpace(st)) > 0 {
		c += "+dirty"
	}
	return c
}

// Machine describes the machine for a results header.
type Machine struct {
	NProc   int
	CPU     string
	Kernel  string
	GoVer   string
	Started time.Time
	LoadAvg string
}

// Describe returns the machine's description now.
func Describe() Machine {
	m := Machine{NProc: runtime.NumCPU(), GoVer: runtime.Version(), Started: time.Now(), LoadAvg: LoadAvg()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "model name") {
				_, v, _ := strings.Cut(line, ":")
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	return m
}

// LoadAvg returns the 1, 5 and 15 minute load averages.
func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// Header prints the markdown header every benchmark's output starts with.
func (e *Env) Header(title, command string) string {
	m := Describe()
	return fmt.Sprintf("## %s\n\n- date: %s\n- commit: %s\n- machine: nproc %d, %s, %s, %s\n- load average at start (1/5/15 min): %s\n- command: `%s`\n",
		title, m.Started.UTC().Format(time.RFC3339), e.Commit, m.NProc, m.CPU, m.Kernel, m.GoVer, m.LoadAvg, command)
}

// Redact replaces the scratch folder with "WORK" and host with "REGISTRY"
// in s, so that printed commands do not show this run's temporary names.
func (e *Env) Redact(s, host string) string {
	s = strings.ReplaceAll(s, e.Work, "WORK")
	if host != "" {
		s = strings.ReplaceAll(s, host, "REGISTRY")
	}
	return s
}
