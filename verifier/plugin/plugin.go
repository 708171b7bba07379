// Package plugin runs third-party verifiers: external executables that
// speak a small versioned JSON protocol (Version) over standard input and
// output. vouch writes one Request, with the artifact's layers inlined, and
// reads one Response; docs/plugins.md specifies the protocol for plugin
// authors.
//
// A plugin runs in a clean environment (only the variables Config.Env
// allows, so that vouch's secrets do not leak), in its own process group,
// bounded by Config.Timeout and Config.MaxOutputBytes: when either is
// exceeded the whole group is killed, grandchildren included.
package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vouch-project/vouch/internal/childproc"
	"github.com/vouch-project/vouch/internal/untrusted"

	"github.com/vouch-project/vouch"
)

// Defaults of Config's bounds.
const (
	// DefaultTimeout bounds one run of a plugin.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxOutputBytes bounds what vouch reads from a plugin's
	// standard output.
	DefaultMaxOutputBytes = 1 << 20
	// DefaultMaxBlobBytes bounds the layers inlined in one request, in
	// total.
	DefaultMaxBlobBytes = 16 << 20
	// MaxStderrBytes is how much of a plugin's standard error vouch keeps,
	// for the reason of an errored result; the rest is discarded.
	MaxStderrBytes = 4096
	// DefaultPath is the PATH a plugin gets unless Config.Env passes
	// vouch's own.
	DefaultPath = "/usr/local/bin:/usr/bin:/bin"
)

// errTimeout is the cause of a run's context ending at Config.Timeout.
var errTimeout = errors.New("plugin timeout")

// waitDelay bounds how long vouch waits for a plugin's output pipes to close
// after it exited or was killed.
const waitDelay = time.Second

// Config is the `plugin:` section of a verifier in vouch's config file.
//
// +kubebuilder:object:generate=true
type Config struct {
	// Path is the plugin executable, absolute or relative to the config
	// file's folder. It must exist, be a regular executable file and not be
	// writable by every user; vouch never downloads plugins. Required.
	Path string `json:"path"`
	// Args are passed to the plugin after its path. Optional.
	Args []string `json:"args,omitempty"`
	// ArtifactTypes lists the referrer artifact types the plugin checks;
	// "*" checks every referrer. Required.
	ArtifactTypes []string `json:"artifactTypes"`
	// Parameters is any JSON object, passed to the plugin as
	// verifier.parameters. Optional.
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	Parameters Parameters `json:"parameters,omitempty"`
	// Timeout bounds one run, from start to exit. Optional; default "5s".
	Timeout Duration `json:"timeout,omitempty"`
	// MaxOutputBytes bounds the plugin's standard output; a plugin that
	// writes more is killed and its result is an error. Optional; default
	// 1048576 (1 MiB).
	MaxOutputBytes int64 `json:"maxOutputBytes,omitempty"`
	// MaxBlobBytes bounds the artifact layers inlined in one request, in
	// total. Optional; default 16777216 (16 MiB).
	MaxBlobBytes int64 `json:"maxBlobBytes,omitempty"`
	// Env names the variables of vouch's environment that the plugin gets;
	// it gets no others, except PATH set to DefaultPath unless PATH is
	// named here. Optional.
	Env []string `json:"env,omitempty"`
}

// Parameters is a plugin's parameters: any JSON object.
type Parameters map[string]any

// DeepCopyInto copies p into out, as Kubernetes' generated code expects
// of the types in vouch's custom resources.
func (p Parameters) DeepCopyInto(out *Parameters) {
	if p == nil {
		*out = nil
		return
	}
	*out = deepCopyJSON(map[string]any(p)).(map[string]any)
}

// DeepCopy returns a copy of p.
func (p Parameters) DeepCopy() Parameters {
	var out Parameters
	p.DeepCopyInto(&out)
	return out
}

// deepCopyJSON copies a value decoded from JSON.
func deepCopyJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = deepCopyJSON(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = deepCopyJSON(e)
		}
		return s
	}
	return v
}

// Duration is a time.Duration written as a string ("5s", "1m30s").
//
// +kubebuilder:validation:Type=string
type Duration struct{ time.Duration }

// UnmarshalJSON reads "5s"-style strings.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`expected a duration such as "5s"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// Validate checks c without looking at the file system; errors name the
// field by its path below prefix.
func (c *Config) Validate(prefix string) error {
	if c.Path == "" {
		return fmt.Errorf("%s.path: required: the plugin executable", prefix)
	}
	if len(c.ArtifactTypes) == 0 {
		return fmt.Errorf("%s.artifactTypes: required: the artifact types the plugin checks", prefix)
	}
	for i, t := range c.ArtifactTypes {
		if strings.TrimSpace(t) == "" {
			return fmt.Errorf("%s.artifactTypes[%d]: empty", prefix, i)
		}
	}
	if c.Timeout.Duration < 0 {
		return fmt.Errorf("%s.timeout: cannot be negative", prefix)
	}
	if c.MaxOutputBytes < 0 {
		return fmt.Errorf("%s.maxOutputBytes: cannot be negative", prefix)
	}
	if c.MaxBlobBytes < 0 {
		return fmt.Errorf("%s.maxBlobBytes: cannot be negative", prefix)
	}
	for i, name := range c.Env {
		if name == "" || strings.ContainsAny(name, "=\x00") {
			return fmt.Errorf("%s.env[%d]: %q is not a variable name", prefix, i, name)
		}
	}
	if _, err := json.Marshal(c.Parameters); err != nil {
		return fmt.Errorf("%s.parameters: %v", prefix, err)
	}
	return nil
}

// Verifier runs one plugin executable on each artifact it handles. It is
// safe for concurrent use; each Verify starts a process.
type Verifier struct {
	name       string
	path       string
	args       []string
	types      map[string]bool
	all        bool
	parameters map[string]any
	timeout    time.Duration
	maxOutput  int64
	maxBlobs   int64
	env        []string
}

// New checks c and the plugin executable and builds the verifier named
// name; a relative c.Path resolves against the working directory (vouch's
// config package resolves it against the config file's folder first). The
// environment that the plugin will get is read from vouch's here, once.
func New(name string, c Config) (*Verifier, error) {
	if err := c.Validate("plugin"); err != nil {
		return nil, err
	}
	path, err := filepath.Abs(c.Path)
	if err != nil {
		return nil, fmt.Errorf("plugin.path: %w", err)
	}
	if err := checkExecutable(path); err != nil {
		return nil, fmt.Errorf("plugin.path: %w", err)
	}
	v := &Verifier{
		name: name, path: path, args: append([]string(nil), c.Args...),
		types: map[string]bool{}, parameters: c.Parameters,
		timeout: c.Timeout.Duration, maxOutput: c.MaxOutputBytes, maxBlobs: c.MaxBlobBytes,
	}
	if v.parameters == nil {
		v.parameters = map[string]any{}
	}
	if v.timeout == 0 {
		v.timeout = DefaultTimeout
	}
	if v.maxOutput == 0 {
		v.maxOutput = DefaultMaxOutputBytes
	}
	if v.maxBlobs == 0 {
		v.maxBlobs = DefaultMaxBlobBytes
	}
	for _, t := range c.ArtifactTypes {
		v.types[t] = true
		v.all = v.all || t == "*"
	}
	v.env = environment(c.Env)
	return v, nil
}

// checkExecutable refuses what is not a regular, executable file, or what
// any user could replace.
func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	switch mode := fi.Mode(); {
	case !mode.IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	case mode.Perm()&0o111 == 0:
		return fmt.Errorf("%s is not executable", path)
	case mode.Perm()&0o002 != 0:
		return fmt.Errorf("%s is writable by every user; vouch does not run it", path)
	}
	return nil
}

// environment is the plugin's environment: the allowed variables that are
// set in vouch's, and PATH.
func environment(allowed []string) []string {
	env := []string{}
	hasPath := false
	for _, name := range allowed {
		if value, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+value)
		}
		hasPath = hasPath || name == "PATH"
	}
	if !hasPath {
		env = append(env, "PATH="+DefaultPath)
	}
	return env
}

// Name returns the verifier's name in reports.
func (v *Verifier) Name() string { return v.name }

// Handles reports whether artifactType is one of Config.ArtifactTypes.
func (v *Verifier) Handles(artifactType string) bool { return v.all || v.types[artifactType] }

// Verify runs the plugin on req.Artifact: it fetches the artifact's layers
// through req.Repository, writes the request, and reads the response.
//
// Outcomes: the plugin's (passed, failed, skipped; its "error" becomes
// Errored). Errored, with a reason that says what went wrong and the start
// of the plugin's standard error, when the plugin cannot start, exits
// non-zero, crashes, runs past the timeout, writes more than MaxOutputBytes,
// or answers something that is not a response of this protocol's version.
// An error is returned when the layers cannot be fetched, when they exceed
// MaxBlobBytes, or when ctx ends.
func (v *Verifier) Verify(ctx context.Context, req *vouch.VerifyRequest) (vouch.Result, error) {
	input, err := v.request(ctx, req)
	if err != nil {
		return vouch.Result{}, err
	}
	out, stderr, err := v.run(ctx, input)
	if ctx.Err() != nil {
		return vouch.Result{}, ctx.Err()
	}
	if err != nil {
		return errored(err), nil
	}
	resp, err := ParseResponse(out)
	if err != nil {
		return errored(&runError{msg: fmt.Sprintf("plugin %s answered badly: %v", filepath.Base(v.path), err), stderr: stderr}), nil
	}
	return resp.Result(), nil
}

// request builds the plugin's input.
func (v *Verifier) request(ctx context.Context, req *vouch.VerifyRequest) ([]byte, error) {
	var total int64
	for _, l := range req.Manifest.Layers {
		if l.Size < 0 || total+l.Size > v.maxBlobs || total+l.Size < total {
			return nil, &vouch.LimitError{Limit: "maxBlobBytes", What: fmt.Sprintf("the layers of %s for plugin %s", req.Artifact.Digest, v.name), Value: -1, Max: v.maxBlobs}
		}
		total += l.Size
	}
	r := Request{
		Version:  Version,
		Verifier: VerifierInfo{Name: v.name, Parameters: v.parameters},
		Subject:  Subject{Reference: req.Reference.String(), Descriptor: req.Subject},
		Artifact: Artifact{Descriptor: req.Artifact, Manifest: req.Manifest},
		Blobs:    make([]Blob, 0, len(req.Manifest.Layers)),
	}
	for _, l := range req.Manifest.Layers {
		data, err := req.Repository.Fetch(ctx, l)
		if err != nil {
			return nil, fmt.Errorf("fetch layer: %w", err)
		}
		r.Blobs = append(r.Blobs, Blob{Descriptor: l, Data: data})
	}
	input, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("plugin request: %w", err)
	}
	return input, nil
}

// runError is why a run gave no usable output, with the start of the
// plugin's standard error.
type runError struct {
	msg    string
	stderr string
}

func (e *runError) Error() string {
	if e.stderr == "" {
		return e.msg
	}
	return e.msg + "; stderr: " + e.stderr
}

// run starts the plugin in its own process group, writes input to its
// standard input and returns its standard output and the start of its
// standard error. Whatever happens, the process group is killed before run
// returns, so nothing the plugin started outlives the call.
func (v *Verifier) run(ctx context.Context, input []byte) ([]byte, string, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, v.timeout, errTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, v.path, v.args...)
	cmd.Env = v.env
	cmd.Dir = filepath.Dir(v.path)
	cmd.Stdin = bytes.NewReader(input)
	stderr := &childproc.HeadWriter{Max: MaxStderrBytes}
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return childproc.KillGroup(cmd.Process) }
	cmd.WaitDelay = waitDelay
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	name := filepath.Base(v.path)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, "", &runError{msg: fmt.Sprintf("plugin %s did not start: %v", name, err)}
	}
	out, readErr := io.ReadAll(io.LimitReader(stdout, v.maxOutput+1))
	overflow := int64(len(out)) > v.maxOutput
	if overflow {
		_ = childproc.KillGroup(cmd.Process)
	}
	waitErr := cmd.Wait()
	// The plugin is gone; whatever it left behind in its group goes too.
	_ = childproc.KillGroup(cmd.Process)
	elapsed := time.Since(start).Round(time.Millisecond)
	errText := untrusted.Text(string(stderr.Bytes()), MaxStderrBytes)
	fail := func(format string, args ...any) ([]byte, string, error) {
		return nil, errText, &runError{msg: fmt.Sprintf("plugin %s ", name) + fmt.Sprintf(format, args...), stderr: errText}
	}
	switch {
	case overflow:
		return fail("wrote more than maxOutputBytes=%d bytes to standard output and was stopped after %s (read %d bytes)", v.maxOutput, elapsed, len(out))
	case context.Cause(ctx) == errTimeout:
		return fail("did not finish within the timeout of %s and was killed", v.timeout)
	case ctx.Err() != nil:
		return nil, errText, ctx.Err()
	case waitErr != nil:
		var exitErr *exec.ExitError
		if errors.As(waitErr, &exitErr) {
			if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return fail("was killed by signal %s", ws.Signal())
			}
			return fail("exited with status %d", exitErr.ExitCode())
		}
		return fail("failed: %v", waitErr)
	case readErr != nil:
		return fail("standard output could not be read: %v", readErr)
	}
	return out, errText, nil
}

func errored(err error) vouch.Result {
	return vouch.Result{Outcome: vouch.Errored, Reason: err.Error()}
}
