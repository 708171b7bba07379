// Package delayproxy is a reverse proxy in front of an OCI registry for the
// benchmarks: it adds a fixed delay to every request (a loopback registry
// answers in microseconds, a real one in tens of milliseconds), optionally
// answers a share of requests with 429 Too Many Requests, and counts
// requests by kind (manifest, blob, referrers, tags), so that a benchmark
// can compare a tool's requests and wall time with the fewest the job
// needs. Every tool under test goes through the same proxy.
//
// Paths are classified by the OCI distribution-spec endpoints
// (https://github.com/opencontainers/distribution-spec/blob/main/spec.md#endpoints).
package delayproxy

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind is the kind of a registry request, from its path.
type Kind string

// The kinds of registry requests.
const (
	// KindBase is GET /v2/, the API version check (and auth probe).
	KindBase Kind = "base"
	// KindManifest is /v2/<name>/manifests/<reference>, by tag or digest,
	// including the "sha256-<hex>" referrers tag of the tag-schema
	// fallback and cosign's ".sig" tags.
	KindManifest Kind = "manifest"
	// KindBlob is /v2/<name>/blobs/<digest> (and uploads).
	KindBlob Kind = "blob"
	// KindReferrers is /v2/<name>/referrers/<digest>, the referrers API.
	KindReferrers Kind = "referrers"
	// KindTags is /v2/<name>/tags/list.
	KindTags Kind = "tags"
	// KindOther is anything else.
	KindOther Kind = "other"
)

// Kinds lists every kind, in the order tables show them.
var Kinds = []Kind{KindManifest, KindBlob, KindReferrers, KindTags, KindBase, KindOther}

// Classify returns the kind of a request for path.
func Classify(path string) Kind {
	if path == "/v2" || path == "/v2/" {
		return KindBase
	}
	if !strings.HasPrefix(path, "/v2/") {
		return KindOther
	}
	rest := path[len("/v2/"):]
	// The repository name may hold slashes; the endpoint is the last
	// "/manifests/", "/blobs/", "/referrers/" or "/tags/list" segment.
	switch {
	case strings.HasSuffix(rest, "/tags/list"):
		return KindTags
	case strings.Contains(rest, "/manifests/"):
		return KindManifest
	case strings.Contains(rest, "/referrers/"):
		return KindReferrers
	case strings.Contains(rest, "/blobs/"):
		return KindBlob
	}
	return KindOther
}

// Options configure a Proxy.
type Options struct {
	// Target is the registry's base URL, e.g. http://127.0.0.1:5000.
	// Required.
	Target *url.URL
	// Delay is added to every request before it is forwarded (or answered
	// with 429). Optional; default none.
	Delay time.Duration
	// TooManyRate is the share of requests, from 0 to 1, answered with 429
	// Too Many Requests and a Retry-After of RetryAfter instead of being
	// forwarded. Optional; default 0.
	TooManyRate float64
	// RetryAfter is the Retry-After of a 429, rounded up to whole seconds
	// as the header requires. Optional; default 1 s.
	RetryAfter time.Duration
	// Seed seeds the choice of the requests answered with 429, so that runs
	// are repeatable. Optional; default 1.
	Seed uint64
	// Log, when true, keeps every request (method, path, kind, start and
	// end) for Requests. Optional; default false.
	Log bool
}

// Request is one request the proxy saw, kept when Options.Log is set.
type Request struct {
	Method string
	Path   string
	Kind   Kind
	Start  time.Time
	End    time.Time
	Status int
}

// Counts are the requests a proxy saw since it started or was Reset.
type Counts struct {
	// Total is every request, 429s included.
	Total int
	// ByKind counts requests by kind.
	ByKind map[Kind]int
	// ByMethodKind counts requests by "METHOD kind", e.g. "HEAD manifest".
	ByMethodKind map[string]int
	// TooMany is the requests answered with 429 by the proxy.
	TooMany int
	// Canceled is the requests the client gave up on (closed or canceled)
	// before the answer: work the tool started and then abandoned.
	Canceled int
	// Failed is the requests the proxy could not forward (registry down).
	Failed int
}

// String renders c on one line: "total 12 (manifest 6, blob 4, ...)".
func (c Counts) String() string {
	var parts []string
	for _, k := range Kinds {
		if n := c.ByKind[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	s := fmt.Sprintf("total %d (%s)", c.Total, strings.Join(parts, ", "))
	if c.TooMany > 0 {
		s += fmt.Sprintf(", %d answered 429", c.TooMany)
	}
	if c.Canceled > 0 {
		s += fmt.Sprintf(", %d canceled by the client", c.Canceled)
	}
	if c.Failed > 0 {
		s += fmt.Sprintf(", %d failed", c.Failed)
	}
	return s
}

// Detail renders the counts by method and kind, sorted.
func (c Counts) Detail() string {
	keys := make([]string, 0, len(c.ByMethodKind))
	for k := range c.ByMethodKind {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, c.ByMethodKind[k]))
	}
	return strings.Join(parts, ", ")
}

// Proxy is an http.Handler that forwards to Options.Target after
// Options.Delay, counting what it forwards.
type Proxy struct {
	opts  Options
	proxy *httputil.ReverseProxy

	mu      sync.Mutex
	rng     *rand.Rand
	counts  Counts
	log     []Request
	started time.Time
}

// New returns a proxy for opts.
func New(opts Options) (*Proxy, error) {
	if opts.Target == nil || opts.Target.Host == "" {
		return nil, fmt.Errorf("delayproxy: Target is required")
	}
	if opts.Delay < 0 {
		return nil, fmt.Errorf("delayproxy: Delay must not be negative")
	}
	if opts.TooManyRate < 0 || opts.TooManyRate > 1 {
		return nil, fmt.Errorf("delayproxy: TooManyRate must be within [0, 1]")
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	target := opts.Target
	p := &Proxy{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed))}
	p.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// Keep the Host the client used, so that the URLs the
			// registry builds (upload locations) point at the proxy.
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			p.mu.Lock()
			if r.Context().Err() != nil {
				p.counts.Canceled++
			} else {
				p.counts.Failed++
			}
			p.mu.Unlock()
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.Reset()
	return p, nil
}

// Reset zeroes the counts and the request log.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts = Counts{ByKind: map[Kind]int{}, ByMethodKind: map[string]int{}}
	p.log = nil
	p.started = time.Now()
}

// Counts returns a copy of the counts since the last Reset.
func (p *Proxy) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := Counts{Total: p.counts.Total, TooMany: p.counts.TooMany, Canceled: p.counts.Canceled, Failed: p.counts.Failed, ByKind: map[Kind]int{}, ByMethodKind: map[string]int{}}
	for k, v := range p.counts.ByKind {
		c.ByKind[k] = v
	}
	for k, v := range p.counts.ByMethodKind {
		c.ByMethodKind[k] = v
	}
	return c
}

// Requests returns the requests seen since the last Reset, in the order
// they arrived, when Options.Log is set.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.log...)
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	kind := Classify(r.URL.Path)
	p.mu.Lock()
	p.counts.Total++
	p.counts.ByKind[kind]++
	p.counts.ByMethodKind[r.Method+" "+string(kind)]++
	tooMany := p.opts.TooManyRate > 0 && p.rng.Float64() < p.opts.TooManyRate
	if tooMany {
		p.counts.TooMany++
	}
	idx := -1
	if p.opts.Log {
		idx = len(p.log)
		p.log = append(p.log, Request{Method: r.Method, Path: r.URL.Path, Kind: kind, Start: start})
	}
	p.mu.Unlock()

	if p.opts.Delay > 0 {
		t := time.NewTimer(p.opts.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			p.mu.Lock()
			p.counts.Canceled++
			p.mu.Unlock()
			return
		}
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	if tooMany {
		secs := int((p.opts.RetryAfter + time.Second - 1) / time.Second)
		sw.Header().Set("Retry-After", strconv.Itoa(secs))
		sw.Header().Set("Content-Type", "application/json")
		sw.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(sw, `{"errors":[{"code":"TOOMANYREQUESTS","message":"delayproxy: too many requests"}]}`)
	} else {
		p.proxy.ServeHTTP(sw, r)
	}
	if idx >= 0 {
		p.mu.Lock()
		if idx < len(p.log) {
			p.log[idx].End = time.Now()
			p.log[idx].Status = sw.status
		}
		p.mu.Unlock()
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Server is a Proxy listening on a loopback port.
type Server struct {
	*Proxy
	// Host is "127.0.0.1:PORT", to use in image references.
	Host string
	srv  *http.Server
}

// Listen starts p on 127.0.0.1 at a free port.
func Listen(p *Proxy) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l) //nolint:errcheck // returns when Close is called
	return &Server{Proxy: p, Host: l.Addr().String(), srv: srv}, nil
}

// Close stops the listener and closes open connections.
func (s *Server) Close() error { return s.srv.Close() }
