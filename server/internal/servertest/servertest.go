// Package servertest builds the whole serving stack for tests, from real
// parts: Notary Project signatures made with notation-go under a CA made in
// the test, pushed into the testbed registries; vouch's registry store,
// notation verifier and default policy; the engine; and the server over
// real HTTPS on 127.0.0.1 with certificates from server.GenerateTLS.
package servertest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/cache"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/server"
	"github.com/vouch-project/vouch/server/engine"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/notation"
)

// Signer signs images with a code-signing certificate issued by a CA made
// in the test (testbed.NotationSigner), the way `notation sign` does.
type Signer struct {
	*testbed.NotationSigner
}

// NewSigner makes a CA and a signing certificate.
func NewSigner(t testing.TB) *Signer {
	t.Helper()
	return &Signer{testbed.NewNotationSigner(t)}
}

// Sign signs subject in repo of the plain-HTTP registry host: a JWS
// envelope pushed as an OCI 1.1 referrer, or with the referrers tag where
// the registry lacks the API.
func (s *Signer) Sign(t testing.TB, host, repo string, subject ocispec.Descriptor) {
	t.Helper()
	s.NotationSigner.Sign(testbed.NewPusher(t, host, repo), subject)
}

// Verifier returns a notation verifier named "notation" that trusts s's CA.
func (s *Signer) Verifier(t testing.TB) *notation.Verifier {
	t.Helper()
	v, err := notation.New(notation.Options{
		Name:        "notation",
		TrustPolicy: notation.QuickTrustPolicy("test"),
		TrustStores: notation.TrustStores{Files: map[string][]string{"ca:test": {s.CAFile}, "signingAuthority:test": {s.CAFile}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Executor returns an executor over plain-HTTP registries with s's
// verifier and the default policy; onResponse, when set, sees every
// registry response.
func (s *Signer) Executor(t testing.TB, onResponse func(host, method string, status int)) *vouch.Executor {
	t.Helper()
	st, err := registry.New(registry.Options{PlainHTTP: true, OnResponse: onResponse})
	if err != nil {
		t.Fatal(err)
	}
	return &vouch.Executor{Store: st, Verifiers: []vouch.Verifier{s.Verifier(t)}, Policy: policy.Default([]string{"notation"})}
}

// Options shape a Stack.
type Options struct {
	// Executor decides, in every namespace. Required.
	Executor *vouch.Executor
	// Cache is the engine's cache. Optional; default in memory.
	Cache cache.Cache
	// Budget is the server's time budget. Optional; server default.
	Budget time.Duration
	// MaxBodyBytes is the server's body bound. Optional; server default.
	MaxBodyBytes int64
	// MutualTLS requires client certificates; Client presents one.
	MutualTLS bool
	// Engine, when set, adjusts the engine's options.
	Engine func(*engine.Options)
	// Metrics, when set, are the server's.
	Metrics *server.Metrics
	// RequestContext, when set, is the server's (reload.Holder.Pin, as
	// vouch serve wires it).
	RequestContext func(context.Context) context.Context
}

// Stack is a running server.
type Stack struct {
	// URL is "https://127.0.0.1:PORT".
	URL string
	// Dir holds the TLS files (server.CAFile, server.CertFile, ...).
	Dir string
	// Client trusts the server's CA and presents the client certificate.
	Client *http.Client
	// Engine, Server and Metrics are the stack's parts.
	Engine  *engine.Engine
	Server  *server.Server
	Metrics *server.Metrics
	// Logs holds what the server logged (JSON lines).
	Logs *SyncBuffer
	// Stop shuts the server down gracefully and returns what Serve
	// returned; later calls return the same.
	Stop func() error
}

// Start starts a stack on 127.0.0.1; it stops when the test ends.
func Start(t testing.TB, o Options) *Stack {
	t.Helper()
	dir := t.TempDir()
	if err := server.GenerateTLS(dir, nil); err != nil {
		t.Fatal(err)
	}
	if o.Metrics == nil {
		o.Metrics = server.NewMetrics()
	}
	logs := &SyncBuffer{}
	logger := server.NewLogger(logs, slog.LevelDebug)
	eo := engine.Options{
		Executor: func(context.Context, string) (*vouch.Executor, string) { return o.Executor, "test-policy" },
		Cache:    o.Cache,
		Logger:   logger,
	}
	if o.Engine != nil {
		o.Engine(&eo)
	}
	var eng *engine.Engine
	hooks := o.Metrics.EngineHooks(func() int64 { return eng.InFlight() })
	if eo.Hooks.OnCache == nil {
		eo.Hooks = hooks
	}
	eng, err := engine.New(eo)
	if err != nil {
		t.Fatal(err)
	}
	files := server.TLSFiles{CertFile: filepath.Join(dir, server.CertFile), KeyFile: filepath.Join(dir, server.KeyFile)}
	if o.MutualTLS {
		files.ClientCAFile = filepath.Join(dir, server.CAFile)
	}
	srv, err := server.New(server.Options{TLS: files, Decider: eng, Budget: o.Budget, MaxBodyBytes: o.MaxBodyBytes, Metrics: o.Metrics, Logger: logger,
		RequestContext: o.RequestContext})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	srv.SetReady(true)
	s := &Stack{URL: "https://" + ln.Addr().String(), Dir: dir, Client: Client(t, dir, true), Engine: eng, Server: srv, Metrics: o.Metrics, Logs: logs}
	s.Stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("server stopped with %v", err)
		}
	})
	return s
}

// Client returns an HTTPS client that trusts the CA in dir and, with
// clientCert, presents client.crt.
func Client(t testing.TB, dir string, clientCert bool) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	caPEM := readFile(t, filepath.Join(dir, server.CAFile))
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA certificate")
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
	if clientCert {
		cert, err := tls.LoadX509KeyPair(filepath.Join(dir, server.ClientCertFile), filepath.Join(dir, server.ClientKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	tr := &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: false}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// Post sends body (marshalled to JSON unless it is []byte) to path and
// returns the response's status and body.
func (s *Stack) Post(t testing.TB, path string, body any) (int, []byte) {
	t.Helper()
	data, ok := body.([]byte)
	if !ok {
		var err error
		if data, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := s.Client.Post(s.URL+path, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Counter counts registry responses, for OnResponse.
type Counter struct {
	mu sync.Mutex
	n  map[string]int
}

// Observe counts one response; it is a registry.Options.OnResponse.
func (c *Counter) Observe(host, method string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[host]++
}

// Count returns the responses seen from host.
func (c *Counter) Count(host string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[host]
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
