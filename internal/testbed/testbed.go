// Package testbed starts the real parts that vouch's tests run against: a
// distribution registry process (no referrers API: the tag-schema fallback),
// go-containerregistry's registry in process (with the referrers API), and
// the oras and notation CLIs. hack/testbed.sh installs the binaries into a
// cache outside the repository; tests fail, never skip, when one is missing.
package testbed

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"io"
	"log"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
)

// BinDir returns the folder hack/testbed.sh installs into.
func BinDir() string {
	if dir := os.Getenv("VOUCH_TESTBED_BIN"); dir != "" {
		return dir
	}
	cache := os.Getenv("VOUCH_TESTBED_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "vouch-testbed")
	}
	return filepath.Join(cache, "bin")
}

// Bin returns the path of an installed testbed program, failing the test
// with a hint when it is missing.
func Bin(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(BinDir(), name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("testbed program %s is missing (%v): run hack/testbed.sh first", name, err)
	}
	return path
}

// Registry is a registry on 127.0.0.1 that a test can push to.
type Registry struct {
	// Name says which implementation it is, for subtest names.
	Name string
	// Host is "127.0.0.1:PORT".
	Host string
	// ReferrersAPI tells whether the registry serves the OCI referrers API.
	ReferrersAPI bool
}

// Distribution starts distribution v3's registry process with filesystem
// storage in a temporary folder. It has no referrers API.
func Distribution(t testing.TB) *Registry {
	t.Helper()
	return distribution(t, "")
}

// DistributionWithHtpasswd starts distribution v3 behind basic
// authentication: htpasswd is the path of a bcrypt htpasswd file.
func DistributionWithHtpasswd(t testing.TB, htpasswd string) *Registry {
	t.Helper()
	return distribution(t, fmt.Sprintf("auth:\n  htpasswd:\n    realm: vouch-test\n    path: %s\n", htpasswd))
}

// distribution starts the registry with extra top-level config YAML.
func distribution(t testing.TB, extra string) *Registry {
	t.Helper()
	bin := Bin(t, "registry")
	dir := t.TempDir()
	port := FreePort(t)
	host := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, filepath.Join(dir, "data"), host, extra)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start registry: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	waitReady(t, "http://"+host+"/v2/", &out)
	return &Registry{Name: "distribution", Host: host}
}

// GGCR serves go-containerregistry's in-memory registry, with the referrers
// API, on 127.0.0.1. wrap, when non-nil, wraps its handler (to inject
// faults the way a misbehaving registry would).
func GGCR(t testing.TB, wrap func(http.Handler) http.Handler) *Registry {
	t.Helper()
	var h http.Handler = ggcr.New(ggcr.WithReferrersSupport(true), ggcr.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &Registry{Name: "ggcr", Host: strings.TrimPrefix(srv.URL, "http://"), ReferrersAPI: true}
}

// Both starts one registry of each kind, for table tests that must pass on
// either discovery path.
func Both(t testing.TB) []*Registry {
	t.Helper()
	return []*Registry{Distribution(t), GGCR(t, nil)}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitReady(t testing.TB, url string, log *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			// 401: up, behind authentication.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not become ready in 20s; output:\n%s", url, log.String())
}

// Run runs a testbed program (oras, notation) and returns its standard
// output, failing the test with its whole output when it exits non-zero.
func Run(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	out, err := RunErr(env, Bin(t, name), args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// RunErr runs the program at path and returns its combined output and error.
func RunErr(env []string, path string, args ...string) (string, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
