// Package testbed starts the real parts that vouch's tests, benchmarks and
// examples run against, and makes what they push and sign: processes with
// their output kept and a readiness wait (Start, Poll), free ports on
// 127.0.0.1, a distribution registry process (no referrers API: the
// tag-schema fallback), go-containerregistry's registry in process (with the
// referrers API), redis-server, vouch built from the working tree, images and
// artifacts pushed with oras-go (PushImage, PushArtifact, ...), and Notary
// Project signatures made with notation-go under a CA of package testca.
//
// Every function that can fail returns an error; the thin wrappers that take
// a testing.TB (Distribution, GGCR, FreePort, Launch, NewPusher,
// NewNotationSigner, ...) fail the test instead and stop what they start
// when the test ends. hack/testbed.sh installs the programs into a cache
// outside the repository; tests fail, never skip, when one is missing.
package testbed

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Module is the import path of vouch's module.
const Module = "github.com/vouch-project/vouch"

// BinDir returns the folder hack/testbed.sh installs into:
// $VOUCH_TESTBED_BIN, or bin under $VOUCH_TESTBED_CACHE, or under
// vouch-testbed in the user's cache folder.
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

// LookBin returns the path of an installed testbed program, or an error
// with a hint when it is missing.
func LookBin(name string) (string, error) {
	path := filepath.Join(BinDir(), name)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("testbed program %s is missing (%v): run hack/testbed.sh first", name, err)
	}
	return path, nil
}

// Bin is LookBin that fails the test when the program is missing.
func Bin(t testing.TB, name string) string {
	t.Helper()
	path, err := LookBin(name)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// PickPort returns a TCP port on 127.0.0.1 that was free a moment ago.
func PickPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PickAddr returns "127.0.0.1:PORT" on a port that was free a moment ago.
func PickAddr() (string, error) {
	port, err := PickPort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

// FreePort is PickPort that fails the test on error.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := PickPort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// FreeAddr is PickAddr that fails the test on error.
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := PickAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// ModuleRoot returns the root folder of vouch's module: the nearest folder
// at or above the working directory whose go.mod declares Module.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module "+Module+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the vouch repository (no go.mod of " + Module + " above the working directory)")
		}
		dir = parent
	}
}

// BuildVouch builds cmd/vouch from the module's working tree into the
// file dst, with the build tags given (none: the default build; "kubernetes"
// links the Kubernetes source of vouch serve --kubernetes).
func BuildVouch(dst string, tags ...string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	args := []string{"build", "-o", dst}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, Module+"/cmd/vouch")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build -tags %q ./cmd/vouch: %v\n%s", strings.Join(tags, ","), err, out)
	}
	return nil
}

// Vouch builds cmd/vouch, with the build tags given (BuildVouch), into a
// temporary folder of the test and returns the program's path.
func Vouch(t testing.TB, tags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vouch")
	if err := BuildVouch(bin, tags...); err != nil {
		t.Fatal(err)
	}
	return bin
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

// RunErr runs the program at path, with env added to the environment,
// and returns its combined output and error.
func RunErr(env []string, path string, args ...string) (string, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}
