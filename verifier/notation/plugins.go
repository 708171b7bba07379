package notation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/notaryproject/notation-plugin-framework-go/plugin"
	"golang.org/x/mod/semver"

	"github.com/vouch-project/vouch/internal/childproc"
	"github.com/vouch-project/vouch/internal/untrusted"
)

// Bounds on verification plugins.
const (
	// DefaultPluginTimeout bounds one call of a verification plugin when
	// Plugins.Timeout is zero.
	DefaultPluginTimeout = 10 * time.Second
	// MaxPluginOutputBytes bounds what vouch reads of a plugin's standard
	// output (its response); a plugin that writes more is killed.
	// notation-go's own bound is 64 MiB; a verify-signature response is a
	// few hundred bytes.
	MaxPluginOutputBytes = 1 << 20
	// MaxPluginErrorBytes bounds what vouch keeps of a plugin's standard
	// error, where the plugin contract puts its error as JSON.
	MaxPluginErrorBytes = 64 << 10
	// DefaultPluginPath is the PATH a plugin gets unless Plugins.Env passes
	// vouch's own.
	DefaultPluginPath = "/usr/local/bin:/usr/bin:/bin"
	// maxPluginReason bounds the plugin's own words (an error message, a
	// verification result's reason) in a report.
	maxPluginReason = 512
	// maxPluginJSONDepth bounds the nesting of a plugin's response.
	maxPluginJSONDepth = 32
	// pluginWaitDelay bounds how long vouch waits for a plugin's output
	// pipes to close after it exited or was killed.
	pluginWaitDelay = time.Second
)

// Plugins configures Notary Project verification plugins: executables that
// a signature names in its signed attribute
// io.cncf.notary.verificationPlugin (AWS Signer's signatures name
// com.amazonaws.signer.notation.plugin) to take over the trusted identity
// and revocation checks. notation-go asks the plugin for its metadata and
// checks io.cncf.notary.verificationPluginMinVersion, then runs it with the
// plugin contract's verify-signature command:
// https://github.com/notaryproject/specifications/blob/v1.1.0/specs/plugin-extensibility.md#verification-extensibility
//
// vouch runs a plugin only from Dir, laid out as notation's plugin folder:
// Dir/NAME/notation-NAME, a regular executable file that not every user may
// write. It runs it directly (no shell), in Dir/NAME, in its own process
// group, with only the variables Env names and PATH, and with Timeout on
// each call; vouch reads at most MaxPluginOutputBytes of its answer.
type Plugins struct {
	// Dir is the plugin folder, such as ~/.config/notation/plugins.
	// Optional; default none: plugins are disabled, and a signature that
	// names one cannot be verified (errored).
	Dir string
	// Timeout bounds each call of a plugin (get-plugin-metadata,
	// verify-signature), from start to exit; the plugin is then killed and
	// the signature errored. Optional; default DefaultPluginTimeout.
	Timeout time.Duration
	// Config is passed to the plugin as pluginConfig in every request, as
	// `notation verify --plugin-config KEY=VALUE` does. Optional.
	Config map[string]string
	// Env names the variables of vouch's environment that plugins get
	// (AWS_REGION, HOME…), with the values they have when New runs; they
	// get no others, except PATH set to DefaultPluginPath unless PATH is
	// named here. Optional.
	Env []string
}

// validPluginName tells whether name is what notation accepts as a plugin
// name (the part of the executable's name after "notation-": letters,
// digits, "_", "." and "-"), at most 200 bytes, and neither "." nor "..":
// one path element below the plugin folder.
func validPluginName(name string) bool {
	if name == "" || len(name) > 200 || name == "." || name == ".." {
		return false
	}
	for _, r := range name {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// PluginError is a verification plugin that could not be found or run, or
// that answered something other than the plugin contract's response: the
// signature cannot be verified. It says nothing of the request, of the
// plugin's configuration or of what the plugin wrote, except the code and
// message of the contract's JSON error, cut and made printable.
type PluginError struct {
	// Plugin is the plugin's name, as the signature names it.
	Plugin string
	// Command is the plugin command that failed, if one ran.
	Command plugin.Command
	// Msg says what went wrong.
	Msg string
}

func (e *PluginError) Error() string {
	if e.Command == "" {
		return fmt.Sprintf("verification plugin %q: %s", untrusted.Text(e.Plugin, 256), e.Msg)
	}
	return fmt.Sprintf("verification plugin %q (%s): %s", untrusted.Text(e.Plugin, 256), e.Command, e.Msg)
}

// errNoPluginDir is the error of a plugin looked up without Plugins.Dir.
var errNoPluginDir = errors.New("no plugin directory configured")

// pluginManager finds verification plugins in one folder: it implements
// notation-go's plugin.Manager, whose CLIManager vouch does not use because
// it runs plugins with vouch's whole environment and reads up to 64 MiB of
// their output.
type pluginManager struct {
	dir     string
	timeout time.Duration
	env     []string
}

func newPluginManager(p Plugins) (*pluginManager, error) {
	m := &pluginManager{dir: p.Dir, timeout: p.Timeout, env: pluginEnvironment(p.Env)}
	if m.timeout < 0 {
		return nil, errors.New("Plugins.Timeout cannot be negative")
	}
	if m.timeout == 0 {
		m.timeout = DefaultPluginTimeout
	}
	if m.dir == "" {
		return m, nil
	}
	fi, err := os.Stat(m.dir)
	if err != nil {
		return nil, fmt.Errorf("plugin directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("plugin directory %s is not a directory", m.dir)
	}
	return m, nil
}

// Get returns the plugin called name, checked but not run.
func (m *pluginManager) Get(ctx context.Context, name string) (plugin.Plugin, error) {
	rec, _ := ctx.Value(recorderKey{}).(*recorder)
	p, err := m.get(name)
	if err != nil {
		err = &PluginError{Plugin: name, Msg: err.Error()}
		rec.recordPlugin(func(r *pluginRecord) { r.err = err })
		return nil, err
	}
	return p, nil
}

func (m *pluginManager) get(name string) (*cliPlugin, error) {
	if m.dir == "" {
		return nil, errNoPluginDir
	}
	if !validPluginName(name) {
		return nil, errors.New("not a valid plugin name")
	}
	path := filepath.Join(m.dir, name, plugin.BinaryPrefix+name)
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("not installed: %s does not exist", path)
	case err != nil:
		return nil, err
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("not installed: %s is not a regular file", path)
	case fi.Mode().Perm()&0o111 == 0:
		return nil, fmt.Errorf("not installed: %s is not executable", path)
	case fi.Mode().Perm()&0o002 != 0:
		return nil, fmt.Errorf("not run: %s is writable by every user", path)
	}
	return &cliPlugin{name: name, path: path, m: m}, nil
}

// List names the plugin folders in Dir.
func (m *pluginManager) List(context.Context) ([]string, error) {
	if m.dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && validPluginName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// pluginEnvironment is a plugin's environment: the allowed variables that
// are set in vouch's, and PATH.
func pluginEnvironment(allowed []string) []string {
	env := []string{}
	hasPath := false
	for _, name := range allowed {
		if value, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+value)
		}
		hasPath = hasPath || name == "PATH"
	}
	if !hasPath {
		env = append(env, "PATH="+DefaultPluginPath)
	}
	return env
}

// cliPlugin runs one plugin executable, a process per call. It verifies
// only: the signing commands are refused without running it.
type cliPlugin struct {
	name, path string
	m          *pluginManager
}

// GetMetadata runs get-plugin-metadata and checks the answer as notation
// does: every field set, contract version 1.0 supported, and the name the
// plugin was found under.
func (p *cliPlugin) GetMetadata(ctx context.Context, req *plugin.GetMetadataRequest) (*plugin.GetMetadataResponse, error) {
	rec, _ := ctx.Value(recorderKey{}).(*recorder)
	var md plugin.GetMetadataResponse
	err := p.call(ctx, req, &md)
	if err == nil {
		err = p.checkMetadata(&md)
	}
	if err != nil {
		rec.recordPlugin(func(r *pluginRecord) { r.err = err })
		return nil, err
	}
	rec.recordPlugin(func(r *pluginRecord) { r.version = md.Version })
	return &md, nil
}

func (p *cliPlugin) checkMetadata(md *plugin.GetMetadataResponse) error {
	bad := func(format string, args ...any) error {
		return &PluginError{Plugin: p.name, Command: plugin.CommandGetMetadata, Msg: "answered bad metadata: " + fmt.Sprintf(format, args...)}
	}
	switch {
	case md.Name == "" || md.Description == "" || md.Version == "" || md.URL == "":
		return bad("name, description, version and url are required")
	case md.Name != p.name:
		return bad("it calls itself %q", untrusted.Text(md.Name, 200))
	case !semver.IsValid("v" + md.Version):
		return bad("version %q is not semantic versioning", untrusted.Text(md.Version, 64))
	case len(md.Capabilities) == 0:
		return bad("no capabilities")
	case !slices.Contains(md.SupportedContractVersions, plugin.ContractVersion):
		return bad("it does not support plugin contract version %s", plugin.ContractVersion)
	}
	return nil
}

// VerifySignature runs verify-signature; the plugin must answer for every
// capability asked.
func (p *cliPlugin) VerifySignature(ctx context.Context, req *plugin.VerifySignatureRequest) (*plugin.VerifySignatureResponse, error) {
	rec, _ := ctx.Value(recorderKey{}).(*recorder)
	if req.ContractVersion == "" {
		req.ContractVersion = plugin.ContractVersion
	}
	var resp plugin.VerifySignatureResponse
	err := p.call(ctx, req, &resp)
	if err == nil {
		for _, c := range req.TrustPolicy.SignatureVerification {
			if resp.VerificationResults[c] == nil {
				err = &PluginError{Plugin: p.name, Command: plugin.CommandVerifySignature, Msg: fmt.Sprintf("answered no result for %s", c)}
				break
			}
		}
	}
	if err != nil {
		rec.recordPlugin(func(r *pluginRecord) { r.err = err })
		return nil, err
	}
	rec.recordPlugin(func(r *pluginRecord) { r.results = resp.VerificationResults })
	return &resp, nil
}

var errSigning = errors.New("vouch runs verification plugins only; it does not sign")

// DescribeKey is refused: vouch does not sign.
func (p *cliPlugin) DescribeKey(context.Context, *plugin.DescribeKeyRequest) (*plugin.DescribeKeyResponse, error) {
	return nil, errSigning
}

// GenerateSignature is refused: vouch does not sign.
func (p *cliPlugin) GenerateSignature(context.Context, *plugin.GenerateSignatureRequest) (*plugin.GenerateSignatureResponse, error) {
	return nil, errSigning
}

// GenerateEnvelope is refused: vouch does not sign.
func (p *cliPlugin) GenerateEnvelope(context.Context, *plugin.GenerateEnvelopeRequest) (*plugin.GenerateEnvelopeResponse, error) {
	return nil, errSigning
}

// Causes of a call's context ending: the timeout, too much output.
var (
	errPluginTimeout  = errors.New("plugin timeout")
	errPluginOverflow = errors.New("plugin output over the limit")
)

// call runs the plugin with req's command as its one argument and req on
// its standard input, and decodes its standard output into resp. Whatever
// happens, the plugin's process group is killed before call returns.
func (p *cliPlugin) call(ctx context.Context, req plugin.Request, resp any) error {
	command := req.Command()
	fail := func(format string, args ...any) error {
		return &PluginError{Plugin: p.name, Command: command, Msg: fmt.Sprintf(format, args...)}
	}
	input, err := json.Marshal(req)
	if err != nil {
		return fail("request: %v", err)
	}
	timed, cancel := context.WithTimeoutCause(ctx, p.m.timeout, errPluginTimeout)
	defer cancel()
	run, stop := context.WithCancelCause(timed)
	defer stop(nil)
	cmd := exec.CommandContext(run, p.path, string(command))
	cmd.Env = p.m.env
	cmd.Dir = filepath.Dir(p.path)
	cmd.Stdin = bytes.NewReader(input)
	// Writers rather than pipes read here: exec copies the output, and
	// WaitDelay bounds the wait for it even when something the plugin
	// started, out of its process group, holds the output open.
	stdout := &childproc.HeadWriter{Max: MaxPluginOutputBytes, Full: func() { stop(errPluginOverflow) }, Overflow: errPluginOverflow}
	stderr := &childproc.HeadWriter{Max: MaxPluginErrorBytes}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return childproc.KillGroup(cmd.Process) }
	cmd.WaitDelay = pluginWaitDelay
	waitErr := cmd.Run()
	// The plugin is gone; whatever it left behind in its group goes too.
	_ = childproc.KillGroup(cmd.Process)
	switch cause := context.Cause(run); {
	case cause == errPluginOverflow:
		return fail("wrote more than %d bytes and was killed", MaxPluginOutputBytes)
	case cause == errPluginTimeout:
		return fail("did not finish within the timeout of %s and was killed", p.m.timeout)
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(waitErr, exec.ErrWaitDelay):
		return fail("exited, but left a process holding its output open; its answer is not used")
	case waitErr != nil:
		return p.failed(command, waitErr, stderr)
	}
	out := stdout.Bytes()
	if err := decodePluginResponse(out, resp); err != nil {
		return fail("answered something that is not its response (%d bytes): %v", len(out), err)
	}
	return nil
}

// decodePluginResponse decodes a plugin's standard output into resp: one
// JSON value, nested at most maxPluginJSONDepth levels.
func decodePluginResponse(out []byte, resp any) error {
	if err := untrusted.CheckJSONDepth(out, maxPluginJSONDepth); err != nil {
		return err
	}
	if err := json.Unmarshal(out, resp); err != nil {
		return untrusted.JSONError(err)
	}
	return nil
}

// pluginErrorMessage reads the plugin contract's JSON error from a
// plugin's standard error: "CODE: MESSAGE", cut and made printable. It
// reports false for anything else.
func pluginErrorMessage(data []byte) (string, bool) {
	var perr plugin.Error
	if decodePluginResponse(data, &perr) != nil || (perr.ErrCode == "" && perr.Message == "") {
		return "", false
	}
	msg := untrusted.Text(string(perr.ErrCode), 64)
	if perr.Message != "" {
		msg += ": " + untrusted.Text(perr.Message, maxPluginReason)
	}
	return msg, true
}

// failed explains a plugin that exited with an error: by the contract's
// JSON error on standard error when it wrote one. Anything else it wrote
// there is not shown: it may be a log of what the plugin knows.
func (p *cliPlugin) failed(command plugin.Command, waitErr error, stderr *childproc.HeadWriter) error {
	status := waitErr.Error()
	var exitErr *exec.ExitError
	if errors.As(waitErr, &exitErr) {
		status = fmt.Sprintf("exited with status %d", exitErr.ExitCode())
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			status = fmt.Sprintf("was killed by signal %s", ws.Signal())
		}
	}
	data := stderr.Bytes()
	if msg, ok := pluginErrorMessage(data); ok {
		return &PluginError{Plugin: p.name, Command: command, Msg: fmt.Sprintf("failed (%s): %s", status, msg)}
	}
	what := "nothing on standard error"
	if n := len(data); n > 0 {
		what = fmt.Sprintf("%d bytes on standard error that are not the plugin contract's JSON error (not shown)", n)
	}
	return &PluginError{Plugin: p.name, Command: command, Msg: fmt.Sprintf("failed (%s), with %s", status, what)}
}

// pluginRecord is what the verification plugin of one Verify call did.
type pluginRecord struct {
	version string
	results map[plugin.Capability]*plugin.VerificationResult
	err     error
}

// recordPlugin updates the plugin record; r may be nil.
func (r *recorder) recordPlugin(update func(*pluginRecord)) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	update(&r.plugin)
}

func (r *recorder) pluginState() pluginRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.plugin
}
