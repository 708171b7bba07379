package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/plugin"
)

const artifactType = "application/vnd.example.thing+json"

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// testPlugin builds testdata/testplugin once per test binary and returns
// the executable's path.
func testPlugin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "vouch-plugin-test-")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, "testplugin"), "./testdata/testplugin").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "testplugin")
}

// fixture is a registry with a store that reads it.
type fixture struct {
	reg   *testbed.Registry
	store vouch.Store
	n     int
}

func newFixture(t *testing.T, reg *testbed.Registry) *fixture {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "docker-config.json")
	if err := os.WriteFile(cfg, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := registry.New(registry.Options{PlainHTTP: true, DockerConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{reg: reg, store: s}
}

// subject pushes a fresh image with one referrer of artifactType holding
// doc, and returns the image's pinned reference and the referrer's digest.
func (f *fixture) subject(t *testing.T, doc string) (vouch.Reference, string) {
	t.Helper()
	f.n++
	repo := fmt.Sprintf("plugin/case%d", f.n)
	p := testbed.NewPusher(t, f.reg.Host, repo)
	img := p.Image("v1", repo)
	art := p.Attach(img, artifactType, "application/json", []byte(doc))
	ref, err := vouch.ParseReference(f.reg.Host + "/" + repo + "@" + img.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	return ref, art.Digest.String()
}

// verify runs an Executor with v over ref and returns v's one result.
func (f *fixture) verify(ctx context.Context, t *testing.T, v vouch.Verifier, ref vouch.Reference) (vouch.Result, error) {
	t.Helper()
	e := &vouch.Executor{Store: f.store, Verifiers: []vouch.Verifier{v}, Policy: policy.Default([]string{v.Name()})}
	report, err := e.Verify(ctx, ref)
	if err != nil {
		return vouch.Result{}, err
	}
	var got []vouch.Result
	report.Root.Walk(func(n *vouch.Node, _ int) { got = append(got, n.Results...) })
	if len(got) != 1 {
		t.Fatalf("got %d results, want 1: %+v", len(got), got)
	}
	return got[0], nil
}

func newVerifier(t *testing.T, c plugin.Config) *plugin.Verifier {
	t.Helper()
	if c.Path == "" {
		c.Path = testPlugin(t)
	}
	if c.ArtifactTypes == nil {
		c.ArtifactTypes = []string{artifactType}
	}
	v, err := plugin.New("test-plugin", c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// gone reports whether pid has exited (a zombie waiting for its parent to
// reap it counts as exited).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}

// waitGone waits up to two seconds for every pid in file to exit.
func waitGone(t *testing.T, file string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the plugin wrote no pids: %v", err)
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		t.Fatalf("pid file %q", data)
	}
	deadline := time.Now().Add(2 * time.Second)
	for _, f := range fields {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		for !gone(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d is still running after the plugin was stopped", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestPlugin(t *testing.T) {
	f := newFixture(t, testbed.GGCR(t, nil))
	ctx := context.Background()

	t.Run("passes with the request it was given", func(t *testing.T) {
		ref, art := f.subject(t, `{"hello":"world"}`)
		params := map[string]any{"allowed": []any{"MIT"}, "strict": true}
		got, err := f.verify(ctx, t, newVerifier(t, plugin.Config{Args: []string{"pass"}, Parameters: params}), ref)
		if err != nil {
			t.Fatal(err)
		}
		if got.Outcome != vouch.Passed || got.Reason != "all good" {
			t.Fatalf("got %s: %s", got.Outcome, got.Reason)
		}
		want := map[string]any{
			"version": plugin.Version, "verifier": "test-plugin", "parameters": params,
			"reference": ref.String(), "subject": ref.Digest.String(), "artifact": art,
			"artifactType": artifactType, "layers": 1.0, "blobs": []any{`{"hello":"world"}`},
			"cwd": filepath.Dir(testPlugin(t)),
		}
		if !reflect.DeepEqual(got.Details, want) {
			t.Fatalf("details\n got %v\nwant %v", got.Details, want)
		}
	})

	t.Run("fails with a sanitized reason", func(t *testing.T) {
		ref, _ := f.subject(t, `{}`)
		got, err := f.verify(ctx, t, newVerifier(t, plugin.Config{Args: []string{"fail"}}), ref)
		if err != nil {
			t.Fatal(err)
		}
		want := "the artifact is not acceptable:  [31mred [0m second line"
		if got.Outcome != vouch.Failed || got.Reason != want || got.Details["rule"] != "no-red" {
			t.Fatalf("got %s: %q %v; want failed: %q", got.Outcome, got.Reason, got.Details, want)
		}
	})

	// The plugin and the child it started both sleep for an hour: the
	// timeout kills the whole process group.
	t.Run("timeout kills the plugin and its children", func(t *testing.T) {
		ref, _ := f.subject(t, `{}`)
		pids := filepath.Join(t.TempDir(), "pids")
		v := newVerifier(t, plugin.Config{Args: []string{"sleep", pids}, Timeout: plugin.Duration{Duration: time.Second}})
		start := time.Now()
		got, err := f.verify(ctx, t, v, ref)
		elapsed := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		if got.Outcome != vouch.Errored || !strings.Contains(got.Reason, "did not finish within the timeout of 1s and was killed") {
			t.Fatalf("got %s: %s", got.Outcome, got.Reason)
		}
		if elapsed > 3*time.Second {
			t.Errorf("the run took %s with a timeout of 1s", elapsed)
		}
		waitGone(t, pids)
	})

	// When vouch's own context ends (a server's request deadline), Verify
	// returns its error and the processes are gone as well.
	t.Run("caller's deadline", func(t *testing.T) {
		ref, _ := f.subject(t, `{}`)
		pids := filepath.Join(t.TempDir(), "pids")
		v := newVerifier(t, plugin.Config{Args: []string{"sleep", pids}, Timeout: plugin.Duration{Duration: time.Minute}})
		cctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel()
		_, err := f.verify(cctx, t, v, ref)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the context's deadline", err)
		}
		waitGone(t, pids)
	})

	t.Run("non-zero exit", func(t *testing.T) {
		ref, _ := f.subject(t, `{}`)
		got, err := f.verify(ctx, t, newVerifier(t, plugin.Config{Args: []string{"exit"}}), ref)
		if err != nil {
			t.Fatal(err)
		}
		if got.Outcome != vouch.Errored || !strings.Contains(got.Reason, "plugin testplugin exited with status 3; stderr: boom: the license database is unreachable") {
			t.Fatalf("got %s: %s", got.Outcome, got.Reason)
		}
		// The plugin wrote 10 KiB to stderr; vouch keeps 4 KiB.
		if _, stderr, _ := strings.Cut(got.Reason, "stderr: "); len(stderr) > plugin.MaxStderrBytes {
			t.Errorf("reason carries %d bytes of stderr, over %d", len(stderr), plugin.MaxStderrBytes)
		}
	})

	t.Run("crash", func(t *testing.T) {
		ref, _ := f.subject(t, `{}`)
		got, err := f.verify(ctx, t, newVerifier(t, plugin.Config{Args: []string{"panic"}}), ref)
		if err != nil {
			t.Fatal(err)
		}
		if got.Outcome != vouch.Errored || !strings.Contains(got.Reason, "exited with status 2") || !strings.Contains(got.Reason, "panic: assignment to entry in nil map") {
			t.Fatalf("got %s: %s", got.Outcome, got.Reason)
		}
	})

	// The plugin tries to write 100 MiB: vouch reads maxOutputBytes+1,
	// kills it, and is done long before the timeout.
	t.Run("output flood is cut short", func(t *testing.T) {
		ref, _ := f.subject(t, `{}`)
		progress := filepath.Join(t.TempDir(), "progress")
		v := newVerifier(t, plugin.Config{Args: []string{"flood", progress}, Timeout: plugin.Duration{Duration: 30 * time.Second}})
		start := time.Now()
		got, err := f.verify(ctx, t, v, ref)
		elapsed := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		wantRead := fmt.Sprintf("(read %d bytes)", plugin.DefaultMaxOutputBytes+1)
		if got.Outcome != vouch.Errored || !strings.Contains(got.Reason, "wrote more than maxOutputBytes=1048576 bytes") || !strings.Contains(got.Reason, wantRead) {
			t.Fatalf("got %s: %s", got.Outcome, got.Reason)
		}
		if elapsed > 5*time.Second {
			t.Errorf("stopping the flood took %s", elapsed)
		}
		// What the plugin managed to write is what vouch read plus what a
		// pipe buffers (64 KiB on Linux) plus one 64 KiB write in flight.
		time.Sleep(50 * time.Millisecond)
		data, err := os.ReadFile(progress)
		if err != nil {
			t.Fatal(err)
		}
		written, _ := strconv.Atoi(string(data))
		if limit := plugin.DefaultMaxOutputBytes + 1 + 128<<10; written > limit {
			t.Errorf("the plugin wrote %d bytes before it was stopped, over %d", written, limit)
		}
		// And at least what vouch read, less the write it may not have
		// recorded before it died.
		if least := plugin.DefaultMaxOutputBytes + 1 - 64<<10; written < least {
			t.Errorf("the plugin recorded %d bytes written, fewer than the %d vouch read", written, least)
		}
		t.Logf("stopped after %s; the plugin wrote %d bytes of 100 MiB", elapsed, written)
	})

	t.Run("garbage", func(t *testing.T) {
		ref, _ := f.subject(t, `{}`)
		got, err := f.verify(ctx, t, newVerifier(t, plugin.Config{Args: []string{"garbage"}}), ref)
		if err != nil {
			t.Fatal(err)
		}
		if got.Outcome != vouch.Errored || !strings.Contains(got.Reason, `plugin testplugin answered badly: the output is not a JSON object: it starts "Hello! I am not a JSON response."`) {
			t.Fatalf("got %s: %s", got.Outcome, got.Reason)
		}
	})

	t.Run("wrong version", func(t *testing.T) {
		ref, _ := f.subject(t, `{}`)
		got, err := f.verify(ctx, t, newVerifier(t, plugin.Config{Args: []string{"version"}}), ref)
		if err != nil {
			t.Fatal(err)
		}
		if got.Outcome != vouch.Errored || !strings.Contains(got.Reason, `the response is version "vouch.plugin/v0"; vouch speaks vouch.plugin/v1`) {
			t.Fatalf("got %s: %s", got.Outcome, got.Reason)
		}
	})

	t.Run("clean environment", func(t *testing.T) {
		t.Setenv("VOUCH_TEST_SECRET", "hunter2")
		t.Setenv("VOUCH_TEST_ALLOWED", "yes")
		ref, _ := f.subject(t, `{}`)
		v := newVerifier(t, plugin.Config{Args: []string{"env"}, Env: []string{"VOUCH_TEST_ALLOWED", "VOUCH_TEST_UNSET"}})
		got, err := f.verify(ctx, t, v, ref)
		if err != nil {
			t.Fatal(err)
		}
		if got.Outcome != vouch.Passed {
			t.Fatalf("got %s: %s", got.Outcome, got.Reason)
		}
		if want := []any{"PATH", "VOUCH_TEST_ALLOWED"}; !reflect.DeepEqual(got.Details["env"], want) || got.Details["allowed"] != "yes" {
			t.Fatalf("the plugin saw %v (allowed=%v), want %v", got.Details["env"], got.Details["allowed"], want)
		}
	})

	t.Run("inlined blobs are bounded", func(t *testing.T) {
		ref, _ := f.subject(t, `{"big":"`+strings.Repeat("x", 1000)+`"}`)
		got, err := f.verify(ctx, t, newVerifier(t, plugin.Config{Args: []string{"pass"}, MaxBlobBytes: 512}), ref)
		if err != nil {
			t.Fatal(err)
		}
		if got.Outcome != vouch.Errored || !strings.Contains(got.Reason, "exceeds the limit maxBlobBytes=512") {
			t.Fatalf("got %s: %s", got.Outcome, got.Reason)
		}
	})
}

// The request and the blobs reach the plugin the same way whichever way
// the referrer was discovered.
func TestPluginBothRegistries(t *testing.T) {
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			f := newFixture(t, reg)
			ref, art := f.subject(t, `{"n":1}`)
			got, err := f.verify(context.Background(), t, newVerifier(t, plugin.Config{Args: []string{"pass"}}), ref)
			if err != nil {
				t.Fatal(err)
			}
			if got.Outcome != vouch.Passed || got.Details["artifact"] != art || !reflect.DeepEqual(got.Details["blobs"], []any{`{"n":1}`}) {
				t.Fatalf("got %s: %s %v", got.Outcome, got.Reason, got.Details)
			}
		})
	}
}

func TestNew(t *testing.T) {
	bin := testPlugin(t)
	dir := t.TempDir()
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notExec := write("not-exec", 0o644)
	worldWritable := write("world-writable", 0o777)
	types := []string{artifactType}
	cases := []struct {
		name string
		c    plugin.Config
		want string
	}{
		{"no path", plugin.Config{ArtifactTypes: types}, "plugin.path: required"},
		{"no artifact types", plugin.Config{Path: bin}, "plugin.artifactTypes: required"},
		{"missing", plugin.Config{Path: filepath.Join(dir, "nope"), ArtifactTypes: types}, "no such file"},
		{"a folder", plugin.Config{Path: dir, ArtifactTypes: types}, "is not a regular file"},
		{"not executable", plugin.Config{Path: notExec, ArtifactTypes: types}, "is not executable"},
		{"world-writable", plugin.Config{Path: worldWritable, ArtifactTypes: types}, "is writable by every user"},
		{"negative timeout", plugin.Config{Path: bin, ArtifactTypes: types, Timeout: plugin.Duration{Duration: -time.Second}}, "plugin.timeout"},
		{"negative output bound", plugin.Config{Path: bin, ArtifactTypes: types, MaxOutputBytes: -1}, "plugin.maxOutputBytes"},
		{"bad env name", plugin.Config{Path: bin, ArtifactTypes: types, Env: []string{"A=B"}}, "plugin.env[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := plugin.New("p", c.c)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v; want an error containing %q", err, c.want)
			}
		})
	}

	t.Run("in the config folder", func(t *testing.T) {
		v, err := plugin.New("p", plugin.Config{Path: filepath.Join(filepath.Dir(bin), "testplugin"), ArtifactTypes: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		if !v.Handles("anything/at-all") || v.Name() != "p" {
			t.Fatal("a \"*\" plugin should handle every type")
		}
	})
}

// The config section decodes from JSON with a duration string.
func TestConfigJSON(t *testing.T) {
	var c plugin.Config
	doc := `{"path":"p","artifactTypes":["a"],"parameters":{"allowed":["MIT"]},"timeout":"2s","env":["HOME"]}`
	if err := json.Unmarshal([]byte(doc), &c); err != nil {
		t.Fatal(err)
	}
	if c.Timeout.Duration != 2*time.Second || c.Parameters["allowed"].([]any)[0] != "MIT" {
		t.Fatalf("decoded %+v", c)
	}
	if err := json.Unmarshal([]byte(`{"timeout":5}`), &c); err == nil {
		t.Fatal("a number was accepted as a duration")
	}
	out, err := json.Marshal(c.Timeout)
	if err != nil || string(out) != `"2s"` {
		t.Fatalf("marshal: %s %v", out, err)
	}
}
