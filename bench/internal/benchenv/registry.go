package benchenv

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/vouch-project/vouch/bench/delayproxy"
)

// Registry is a distribution v3 registry process on 127.0.0.1 (no
// referrers API: clients use the tag-schema fallback).
type Registry struct {
	// Host is "127.0.0.1:PORT".
	Host string
	cmd  *exec.Cmd
}

// StartRegistry starts the registry with its storage in a new folder under
// e.Work.
func (e *Env) StartRegistry(name string) (*Registry, error) {
	dir := e.Dir(name)
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
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
`, filepath.Join(dir, "data"), host)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd := exec.Command(e.Bin["registry"], "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	r := &Registry{Host: host, cmd: cmd}
	if err := WaitHTTP("http://"+host+"/v2/", nil, 20*time.Second); err != nil {
		r.Stop()
		return nil, fmt.Errorf("registry: %w; output:\n%s", err, out.String())
	}
	return r, nil
}

// Stop kills the registry process.
func (r *Registry) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
}

// PID is the registry's process id.
func (r *Registry) PID() int { return r.cmd.Process.Pid }

// Proxy starts a delay proxy in front of r.
func (r *Registry) Proxy(delay time.Duration, tooManyRate float64) (*delayproxy.Server, error) {
	p, err := delayproxy.New(delayproxy.Options{
		Target:      &url.URL{Scheme: "http", Host: r.Host},
		Delay:       delay,
		TooManyRate: tooManyRate,
	})
	if err != nil {
		return nil, err
	}
	return delayproxy.Listen(p)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitHTTP waits until GET url answers 200, asking with client (default
// http.DefaultClient).
func WaitHTTP(url string, client *http.Client, timeout time.Duration) error {
	if client == nil {
		client = http.DefaultClient
	}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("status %s", resp.Status)
		} else {
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %v", url, timeout, last)
}
