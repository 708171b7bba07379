package testbed

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// CredentialHelper is a Docker credential helper executable,
// docker-credential-NAME, built by the test from a small Go program: it
// speaks the helper protocol's "get" (the server URL on standard input;
// {"ServerURL","Username","Secret"} on standard output, or an error
// message on standard output and exit status 1), as
// github.com/docker/docker-credential-helpers defines it. What it answers
// is set with Serve, Fail and Print; each call is counted.
type CredentialHelper struct {
	// Dir holds the executable: put it first on PATH.
	Dir string
	// Name is NAME, what credsStore or credHelpers name.
	Name string

	t    testing.TB
	path string
}

// credHelperSource is the helper's program. Its behaviour file is its own
// path + ".json"; each call appends a line to its path + ".calls".
const credHelperSource = `package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

type behaviour struct {
	Creds  map[string][2]string ` + "`json:\"creds\"`" + `
	Fail   string              ` + "`json:\"fail\"`" + `
	Print  string              ` + "`json:\"print\"`" + `
}

func main() {
	self, _ := os.Executable()
	action := ""
	if len(os.Args) > 1 {
		action = os.Args[1]
	}
	in, _ := io.ReadAll(io.LimitReader(os.Stdin, 4096))
	server := strings.TrimSpace(string(in))
	if f, err := os.OpenFile(self+".calls", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
		fmt.Fprintf(f, "%s %s\n", action, server)
		f.Close()
	}
	fmt.Fprintf(os.Stderr, "test credential helper: %s %s\n", action, server)
	var b behaviour
	data, err := os.ReadFile(self + ".json")
	if err == nil {
		err = json.Unmarshal(data, &b)
	}
	if err != nil {
		fmt.Println("test credential helper: no behaviour:", err)
		os.Exit(1)
	}
	switch {
	case action != "get":
		fmt.Println("test credential helper: only get is implemented")
		os.Exit(1)
	case b.Fail != "":
		fmt.Println(b.Fail)
		os.Exit(1)
	case b.Print != "":
		fmt.Print(b.Print)
		return
	}
	c, ok := b.Creds[server]
	if !ok {
		fmt.Println("credentials not found in native keychain")
		os.Exit(1)
	}
	out, _ := json.Marshal(map[string]string{"ServerURL": server, "Username": c[0], "Secret": c[1]})
	os.Stdout.Write(out)
}
`

// NewCredentialHelper builds docker-credential-NAME into a temporary
// folder with the go command that runs the test; it answers "not found"
// until told otherwise.
func NewCredentialHelper(t testing.TB, name string) *CredentialHelper {
	t.Helper()
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module example.com/credhelper\n\ngo 1.21\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(credHelperSource), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "docker-credential-"+name)
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "build", "-o", path, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the credential helper: %v\n%s", err, out)
	}
	h := &CredentialHelper{Dir: dir, Name: name, t: t, path: path}
	h.set(map[string]any{})
	return h
}

func (h *CredentialHelper) set(b map[string]any) {
	h.t.Helper()
	data, err := json.Marshal(b)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(h.path+".json", data, 0o600); err != nil {
		h.t.Fatal(err)
	}
}

// Serve makes the helper answer get for each server (as Docker passes it:
// "host[:port]") with a username and secret; other servers are not found.
func (h *CredentialHelper) Serve(creds map[string][2]string) { h.set(map[string]any{"creds": creds}) }

// Fail makes get fail with message (standard output, exit status 1).
func (h *CredentialHelper) Fail(message string) { h.set(map[string]any{"fail": message}) }

// Print makes get print out and succeed, whatever out is.
func (h *CredentialHelper) Print(out string) { h.set(map[string]any{"print": out}) }

// Calls lists the calls so far, "ACTION SERVER" each.
func (h *CredentialHelper) Calls() []string {
	data, err := os.ReadFile(h.path + ".calls")
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}
