package testbed

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Toxiproxy is a running toxiproxy-server (Shopify's TCP fault-injection
// proxy, built by hack/testbed.sh), driven through its HTTP API: proxies
// between vouch and what it talks to, and toxics on them (latency,
// resets, timeouts, bandwidth).
type Toxiproxy struct {
	// API is the base URL of its HTTP API.
	API string

	t      testing.TB
	client *http.Client
}

// StartToxiproxy starts toxiproxy-server on a free port of 127.0.0.1 and
// waits until its API answers; it is killed when the test ends.
func StartToxiproxy(t testing.TB) *Toxiproxy {
	t.Helper()
	addr := FreeAddr(t)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p := Launch(t, ProcessOptions{Name: "toxiproxy-server", Path: Bin(t, "toxiproxy-server"), Args: []string{"-host", host, "-port", port}})
	tp := &Toxiproxy{API: "http://" + addr, t: t, client: &http.Client{Timeout: 10 * time.Second}}
	WaitFor(t, "toxiproxy-server", 20*time.Second, p, func() error { return HTTPReady(tp.client, tp.API+"/version") })
	return tp
}

// Proxy creates a proxy named name towards upstream ("host:port") and
// returns the address it listens on.
func (tp *Toxiproxy) Proxy(name, upstream string) string {
	tp.t.Helper()
	listen := FreeAddr(tp.t)
	tp.call(http.MethodPost, "/proxies", map[string]any{"name": name, "listen": listen, "upstream": upstream, "enabled": true})
	return listen
}

// SetEnabled turns a proxy on or off: off, it refuses connections and
// drops those it holds, as a dead server would.
func (tp *Toxiproxy) SetEnabled(proxy string, enabled bool) {
	tp.t.Helper()
	tp.call(http.MethodPost, "/proxies/"+proxy, map[string]any{"enabled": enabled})
}

// Toxic is one fault on a proxy's stream.
type Toxic struct {
	// Name names it, for RemoveToxic.
	Name string `json:"name"`
	// Type is a toxiproxy toxic type: latency, bandwidth, slow_close,
	// timeout, reset_peer, slicer, limit_data.
	Type string `json:"type"`
	// Stream is "downstream" (towards the client, the default) or
	// "upstream".
	Stream string `json:"stream,omitempty"`
	// Toxicity is the share of connections it applies to, 0 to 1; 0
	// means 1.
	Toxicity float64 `json:"toxicity"`
	// Attributes are the type's parameters (latency and jitter in ms,
	// rate in KB/s, timeout in ms...).
	Attributes map[string]int `json:"attributes"`
}

// AddToxic adds a toxic to a proxy.
func (tp *Toxiproxy) AddToxic(proxy string, x Toxic) {
	tp.t.Helper()
	if x.Toxicity == 0 {
		x.Toxicity = 1
	}
	if x.Stream == "" {
		x.Stream = "downstream"
	}
	tp.call(http.MethodPost, "/proxies/"+proxy+"/toxics", x)
}

// RemoveToxic removes the toxic named name from a proxy.
func (tp *Toxiproxy) RemoveToxic(proxy, name string) {
	tp.t.Helper()
	tp.call(http.MethodDelete, "/proxies/"+proxy+"/toxics/"+name, nil)
}

func (tp *Toxiproxy) call(method, path string, body any) {
	tp.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			tp.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, tp.API+path, r)
	if err != nil {
		tp.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := tp.client.Do(req)
	if err != nil {
		tp.t.Fatalf("toxiproxy %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		tp.t.Fatalf("toxiproxy %s %s: %s: %s", method, path, resp.Status, msg)
	}
}
