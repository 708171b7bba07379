package notation_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	notationregistry "github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/verifier"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/verifier/notation"
)

// testPluginName is the name of the plugin in testdata/plugin.
const testPluginName = "vouch-test"

var (
	pluginBuild    sync.Once
	pluginBuildDir string
	pluginBuildErr error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pluginBuildDir != "" {
		os.RemoveAll(pluginBuildDir)
	}
	os.Exit(code)
}

// testPluginDir builds testdata/plugin once per test binary into a plugin
// folder laid out as notation's (DIR/vouch-test/notation-vouch-test) and
// returns the folder.
func testPluginDir(t *testing.T) string {
	t.Helper()
	pluginBuild.Do(func() {
		pluginBuildDir, pluginBuildErr = os.MkdirTemp("", "vouch-notation-plugins-")
		if pluginBuildErr != nil {
			return
		}
		bin := filepath.Join(pluginBuildDir, testPluginName, "notation-"+testPluginName)
		out, err := exec.Command("go", "build", "-o", bin, "./testdata/plugin").CombinedOutput()
		if err != nil {
			pluginBuildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if pluginBuildErr != nil {
		t.Fatal(pluginBuildErr)
	}
	return pluginBuildDir
}

// signNamingPlugin signs target the way a signing plugin such as AWS
// Signer's does: the envelope names a verification plugin (and a minimum
// version) in critical extended signed attributes. notation-go's generic
// signer cannot set them, so the envelope is made with notation-core-go
// and pushed as notation does.
func signNamingPlugin(ctx context.Context, t *testing.T, p *testbed.Pusher, target ocispec.Descriptor, key crypto.PrivateKey, chain []*x509.Certificate, mediaType, plugin, minVersion string) {
	t.Helper()
	payload, err := json.Marshal(map[string]any{"targetArtifact": ocispec.Descriptor{MediaType: target.MediaType, Digest: target.Digest, Size: target.Size}})
	if err != nil {
		t.Fatal(err)
	}
	sgn, err := signature.NewLocalSigner(chain, key)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signature.NewEnvelope(mediaType)
	if err != nil {
		t.Fatal(err)
	}
	attrs := []signature.Attribute{{Key: verifier.HeaderVerificationPlugin, Critical: true, Value: plugin}}
	if minVersion != "" {
		attrs = append(attrs, signature.Attribute{Key: verifier.HeaderVerificationPluginMinVersion, Critical: true, Value: minVersion})
	}
	sig, err := env.Sign(&signature.SignRequest{
		Payload:                  signature.Payload{ContentType: "application/vnd.cncf.notary.payload.v1+json", Content: payload},
		Signer:                   sgn,
		SigningTime:              time.Now(),
		SigningScheme:            signature.SigningSchemeX509,
		SigningAgent:             "vouch-tests/1.0",
		ExtendedSignedAttributes: attrs,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := notationregistry.NewRepository(p.Repo).PushSignature(ctx, mediaType, sig, target, nil); err != nil {
		t.Fatalf("push signature: %v", err)
	}
}

// TestPlugins verifies signatures that name a verification plugin, with a
// real plugin (testdata/plugin, built on notation-plugin-framework-go) run
// from a plugin folder, on a distribution registry, under vouch's default
// policy: the plugin's answer decides the trusted identity and revocation
// checks; a plugin that is not configured, not installed, too old, hangs,
// fails, or answers garbage denies the subject (errored: fail closed).
func TestPlugins(t *testing.T) {
	ctx := t.Context()
	dir := testPluginDir(t)
	trusted, other := newCA(t, "Vouch Plugin Root"), newCA(t, "Other Root")
	var good, impostor signerKey
	good.key, good.chain = trusted.leaf(t, "plugin signer", leafOptions{})
	impostor.key, impostor.chain = other.leaf(t, "impostor", leafOptions{})

	reg := testbed.Distribution(t)
	push := func(repo string, k signerKey, mediaType, plugin, minVersion string) vouch.Reference {
		p := testbed.NewPusher(t, reg.Host, repo)
		img := p.Image("", "image for "+repo)
		signNamingPlugin(ctx, t, p, img, k.key, k.chain, mediaType, plugin, minVersion)
		return testbed.Ref(t, reg.Host+"/"+repo+"@"+img.Digest.String())
	}
	jws, cose := notation.MediaTypeJWS, notation.MediaTypeCOSE
	named := push("plugin/named", good, jws, testPluginName, "1.0.0")
	namedCOSE := push("plugin/named-cose", good, cose, testPluginName, "")
	tooNew := push("plugin/too-new", good, jws, testPluginName, "9.0.0")
	absent := push("plugin/absent", good, jws, "absent-plugin", "")
	traversal := push("plugin/traversal", good, jws, "..", "")
	untrustedSigner := push("plugin/impostor", impostor, jws, testPluginName, "")

	// A copy that every user may write is refused.
	writable := t.TempDir()
	copyPlugin(t, filepath.Join(dir, testPluginName), filepath.Join(writable, testPluginName), 0o777)

	// The plugin takes over the trusted identity check: this identity is
	// not the signer's, and only the plugin judges it.
	const identity = "x509.subject:C=US, ST=WA, O=Someone Else, CN=someone-else"
	gate := func(t *testing.T, level string, plugins notation.Plugins) *gate {
		t.Helper()
		doc, err := notation.ParseTrustPolicy([]byte(`{"version":"1.0","trustPolicies":[{"name":"acme","registryScopes":["*"],
		  "signatureVerification":{"level":"`+level+`"},"trustStores":["ca:acme"],"trustedIdentities":["`+identity+`"]}]}`), "test")
		if err != nil {
			t.Fatal(err)
		}
		v, err := notation.New(notation.Options{TrustPolicy: doc, TrustStores: notation.TrustStores{Inline: map[string][]string{"ca:acme": {trusted.pem()}}}, Plugins: plugins})
		if err != nil {
			t.Fatal(err)
		}
		return newGate(t, v)
	}
	mode := func(m string) notation.Plugins {
		return notation.Plugins{Dir: dir, Config: map[string]string{"mode": m, "expect-identity": identity}}
	}
	pluginDetails := map[string]any{"verificationPlugin": testPluginName, "verificationPluginVersion": "1.2.3"}

	t.Setenv("VOUCH_TEST_SECRET", "s3cr3t")
	for _, c := range []struct {
		name    string
		level   string
		plugins notation.Plugins
		ref     vouch.Reference
		verdict vouch.Verdict
		want    want
		// not, when set, must not be in the reason.
		not string
	}{
		{name: "plugin accepts", plugins: mode("accept"), ref: named, verdict: vouch.Allowed,
			want: want{vouch.Passed, `signed by "CN=plugin signer`, pluginDetails}},
		{name: "plugin accepts, COSE", plugins: mode("accept"), ref: namedCOSE, verdict: vouch.Allowed,
			want: want{vouch.Passed, "signed by", map[string]any{"envelope": "cose", "verificationPlugin": testPluginName}}},
		{name: "plugin rejects the identity", plugins: mode("reject-identity"), ref: named, verdict: vouch.Denied,
			want: want{vouch.Failed, `verification plugin "vouch-test" rejected the signer's identity: signing profile arn:test:profile/revoked-team is not trusted`, map[string]any{"check": "authenticity"}}},
		{name: "plugin fails revocation", plugins: mode("reject-revocation"), ref: named, verdict: vouch.Denied,
			want: want{vouch.Failed, `verification plugin "vouch-test" failed the revocation check: signing job 1234 was revoked`, map[string]any{"check": "revocation"}}},
		{name: "plugin fails revocation, permissive logs it", level: "permissive", plugins: mode("reject-revocation"), ref: named, verdict: vouch.Allowed,
			want: want{vouch.Passed, "logged only, not enforced (level permissive): verification plugin \"vouch-test\" failed the revocation check", nil}},
		{name: "no plugin directory", plugins: notation.Plugins{}, ref: named, verdict: vouch.Denied,
			want: want{vouch.Errored, `the signature requires verification plugin "vouch-test": no plugin directory configured`, nil}},
		{name: "plugin not installed", plugins: mode("accept"), ref: absent, verdict: vouch.Denied,
			want: want{vouch.Errored, `the signature requires verification plugin "absent-plugin": not installed: ` + filepath.Join(dir, "absent-plugin", "notation-absent-plugin") + " does not exist", nil}},
		{name: "plugin name is a path", plugins: mode("accept"), ref: traversal, verdict: vouch.Denied,
			want: want{vouch.Errored, `verification plugin "..": not a valid plugin name`, nil}},
		{name: "plugin writable by every user", plugins: notation.Plugins{Dir: writable}, ref: named, verdict: vouch.Denied,
			want: want{vouch.Errored, "writable by every user", nil}},
		{name: "plugin too old", plugins: mode("accept"), ref: tooNew, verdict: vouch.Denied,
			want: want{vouch.Errored, `the signature requires verification plugin "vouch-test" version 9.0.0 or later; the installed one is version 1.2.3`, nil}},
		{name: "untrusted signer, plugin accepts", plugins: mode("accept"), ref: untrustedSigner, verdict: vouch.Denied,
			want: want{vouch.Failed, "untrusted signer", map[string]any{"check": "authenticity"}}},
		{name: "plugin hangs", plugins: notation.Plugins{Dir: dir, Timeout: 500 * time.Millisecond, Config: map[string]string{"mode": "hang"}}, ref: named, verdict: vouch.Denied,
			want: want{vouch.Errored, `verification plugin "vouch-test" (verify-signature): did not finish within the timeout of 500ms and was killed`, nil}},
		{name: "plugin answers garbage", plugins: mode("garbage"), ref: named, verdict: vouch.Denied,
			want: want{vouch.Errored, `verification plugin "vouch-test" (verify-signature): answered something that is not its response (22 bytes): malformed JSON at byte 1`, nil}},
		{name: "plugin floods its output", plugins: mode("flood"), ref: named, verdict: vouch.Denied,
			want: want{vouch.Errored, `(verify-signature): wrote more than 1048576 bytes and was killed`, nil}},
		{name: "plugin fails with a contract error", plugins: mode("error"), ref: named, verdict: vouch.Denied,
			want: want{vouch.Errored, `(verify-signature): failed (exited with status 1): ACCESS_DENIED: not allowed to call the signing service`, nil}},
		{name: "plugin fails with a log on stderr", plugins: mode("stderr"), ref: named, verdict: vouch.Denied,
			want: want{vouch.Errored, `(verify-signature): failed (exited with status 1), with 39 bytes on standard error that are not the plugin contract's JSON error (not shown)`, nil}, not: "s3cr3t"},
		{name: "plugin calls itself another name", plugins: notation.Plugins{Dir: dir, Config: map[string]string{"metadata-name": "someone-else"}}, ref: named, verdict: vouch.Denied,
			want: want{vouch.Errored, `(get-plugin-metadata): answered bad metadata: it calls itself "someone-else"`, nil}},
		{name: "plugin version is not semver", plugins: notation.Plugins{Dir: dir, Config: map[string]string{"metadata-version": "banana\x1b[31m"}}, ref: named, verdict: vouch.Denied,
			want: want{vouch.Errored, `(get-plugin-metadata): answered bad metadata: version "banana [31m" is not semantic versioning`, nil}},
		{name: "plugin answers no result", plugins: mode("no-result"), ref: named, verdict: vouch.Denied,
			want: want{vouch.Errored, `(verify-signature): answered no result for SIGNATURE_VERIFIER.TRUSTED_IDENTITY`, nil}},
		{name: "plugin sees only PATH", plugins: mode("env"), ref: named, verdict: vouch.Allowed,
			want: want{vouch.Passed, "signed by", nil}},
		{name: "plugin sees the variables Env names", plugins: notation.Plugins{Dir: dir, Env: []string{"VOUCH_TEST_SECRET"}, Config: map[string]string{"mode": "env"}}, ref: named, verdict: vouch.Denied,
			want: want{vouch.Failed, "saw variables VOUCH_TEST_SECRET", nil}},
	} {
		t.Run(c.name, func(t *testing.T) {
			level := c.level
			if level == "" {
				level = "strict"
			}
			start := time.Now()
			r := gate(t, level, c.plugins).check(ctx, t, c.ref, c.verdict, c.want)
			if c.not != "" && strings.Contains(r.Reason, c.not) {
				t.Errorf("reason %q shows %q", r.Reason, c.not)
			}
			// A hanging plugin is killed at the timeout: far sooner than
			// its hour of sleep (a loose bound, for loaded machines).
			if elapsed := time.Since(start); elapsed > 30*time.Second {
				t.Errorf("verification took %s", elapsed)
			}
		})
	}
}

// TestPluginsKillGroup checks that a plugin that runs past its timeout is
// killed with what it started: its child, which holds the plugin's output
// open, is gone too.
func TestPluginsKillGroup(t *testing.T) {
	ctx := t.Context()
	trusted := newCA(t, "Vouch Plugin Group Root")
	var good signerKey
	good.key, good.chain = trusted.leaf(t, "plugin signer", leafOptions{})
	reg := testbed.Distribution(t)
	p := testbed.NewPusher(t, reg.Host, "plugin/group")
	img := p.Image("", "image for the process group")
	signNamingPlugin(ctx, t, p, img, good.key, good.chain, notation.MediaTypeJWS, testPluginName, "")

	pidFile := filepath.Join(t.TempDir(), "child.pid")
	o := policyJSON(t, "strict", "")
	o.TrustStores = notation.TrustStores{Inline: map[string][]string{"ca:acme": {trusted.pem()}}}
	o.Plugins = notation.Plugins{Dir: testPluginDir(t), Timeout: time.Second, Config: map[string]string{"mode": "hang-child", "pid-file": pidFile}}
	v, err := notation.New(*o)
	if err != nil {
		t.Fatal(err)
	}
	newGate(t, v).check(ctx, t, testbed.Ref(t, reg.Host+"/plugin/group@"+img.Digest.String()), vouch.Denied,
		want{vouch.Errored, "did not finish within the timeout of 1s and was killed", nil})
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(data))
	if err != nil {
		t.Fatal(err)
	}
	// Killed: gone, or a zombie that nobody reaped yet.
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the plugin's child %d still runs: %s", pid, stat)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// copyPlugin copies the plugin folder src to dst, the executable with mode.
func copyPlugin(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(src, "notation-"+testPluginName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dst, "notation-"+testPluginName)
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bin, mode); err != nil {
		t.Fatal(err)
	}
}

// TestPluginsOptions checks what New refuses.
func TestPluginsOptions(t *testing.T) {
	opts := func(p notation.Plugins) notation.Options {
		o := policyJSON(t, "skip", "")
		o.Plugins = p
		return *o
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		plugins notation.Plugins
		err     string
	}{
		"missing folder":   {notation.Plugins{Dir: filepath.Join(t.TempDir(), "none")}, "plugin directory: stat"},
		"file":             {notation.Plugins{Dir: file}, "is not a directory"},
		"negative timeout": {notation.Plugins{Dir: t.TempDir(), Timeout: -time.Second}, "Plugins.Timeout cannot be negative"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := notation.New(opts(c.plugins))
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("err = %v, want %q", err, c.err)
			}
		})
	}
}

// TestPluginsCLI runs `vouch verify` with a config file whose notation
// verifier has a plugin folder, relative to the file, and pluginConfig:
// the plugin's acceptance allows (exit 0), its rejection denies (exit 1);
// `notation verify --plugin-config` with the plugin installed agrees.
func TestPluginsCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds vouch")
	}
	ctx := t.Context()
	bin := testbed.Vouch(t)
	trusted := newCA(t, "Vouch Plugin CLI Root")
	var good signerKey
	good.key, good.chain = trusted.leaf(t, "plugin signer", leafOptions{})
	reg := testbed.Distribution(t)
	p := testbed.NewPusher(t, reg.Host, "plugin/cli")
	img := p.Image("", "image for vouch verify")
	signNamingPlugin(ctx, t, p, img, good.key, good.chain, notation.MediaTypeJWS, testPluginName, "1.0.0")
	ref := reg.Host + "/plugin/cli@" + img.Digest.String()

	work := t.TempDir()
	copyPlugin(t, filepath.Join(testPluginDir(t), testPluginName), filepath.Join(work, "plugins", testPluginName), 0o755)
	files := map[string]string{
		"ca.pem": trusted.pem(),
		"trustpolicy.json": `{"version":"1.0","trustPolicies":[{"name":"acme","registryScopes":["*"],
		  "signatureVerification":{"level":"strict"},"trustStores":["ca:acme"],"trustedIdentities":["*"]}]}`,
	}
	for _, mode := range []string{"accept", "reject-identity"} {
		files[mode+".yaml"] = `version: v1
trustStores: [{name: "ca:acme", files: [ca.pem]}]
verifiers:
  - name: notation
    type: notation
    notation:
      trustPolicy: trustpolicy.json
      plugins: {dir: plugins, timeout: 5s, config: {mode: ` + mode + `}}
`
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(work, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		mode string
		code int
		out  string
	}{
		{"accept", 0, `signed by "CN=plugin signer`},
		{"reject-identity", 1, `verification plugin "vouch-test" rejected the signer's identity: signing profile arn:test:profile/revoked-team is not trusted`},
	} {
		t.Run(c.mode, func(t *testing.T) {
			cmd := exec.CommandContext(ctx, bin, "verify", "--config", filepath.Join(work, c.mode+".yaml"), "--plain-http", ref)
			out, err := cmd.CombinedOutput()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			t.Logf("vouch verify (exit %d):\n%s", code, out)
			if code != c.code || !strings.Contains(string(out), c.out) {
				t.Fatalf("exit %d, want %d, and output containing %q", code, c.code, c.out)
			}

			// notation 1.3.2 itself, with the plugin in its plugin
			// folder, decides the same.
			xdg := t.TempDir()
			conf := filepath.Join(xdg, "notation")
			copyPlugin(t, filepath.Join(testPluginDir(t), testPluginName), filepath.Join(conf, "plugins", testPluginName), 0o755)
			for name, body := range map[string]string{"trustpolicy.json": files["trustpolicy.json"], "truststore/x509/ca/acme/ca.pem": files["ca.pem"]} {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(conf, name)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(conf, name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			nout, err := testbed.RunErr([]string{"XDG_CONFIG_HOME=" + xdg, "XDG_CACHE_HOME=" + t.TempDir()}, testbed.Bin(t, "notation"),
				"verify", "--insecure-registry", "--plugin-config", "mode="+c.mode, ref)
			t.Logf("notation verify: %v\n%s", err, nout)
			if (err == nil) != (c.code == 0) {
				t.Fatalf("notation verify: err = %v, vouch verify exit %d", err, c.code)
			}
		})
	}
}
