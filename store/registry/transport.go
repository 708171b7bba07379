package registry

import (
	"context"
	"crypto/tls"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"oras.land/oras-go/v2/registry/remote/retry"
)

// transport is the HTTP transport under oras-go's auth client: retries
// (oras-go's retry.Transport with vouch's policy) over attempts, each of
// which holds one of its host's concurrency slots until the response body
// is closed.
type transport struct {
	secure, insecure http.RoundTripper
	insecureHosts    map[string]bool
	maxConcurrency   int
	maxRetries       int
	maxRetryWait     time.Duration
	onResponse       func(host, method string, status int)
	targets          *targetFilter // nil: every host

	mu   sync.Mutex
	sems map[string]chan struct{}
}

func newTransport(opts Options, insecureHosts map[string]bool) *transport {
	t := &transport{
		insecureHosts:  insecureHosts,
		maxConcurrency: opts.MaxConcurrency,
		maxRetries:     opts.MaxRetries,
		maxRetryWait:   opts.MaxRetryWait,
		onResponse:     opts.OnResponse,
		sems:           map[string]chan struct{}{},
	}
	base := opts.Transport
	if base == nil {
		ht := http.DefaultTransport.(*http.Transport).Clone()
		ht.MaxIdleConnsPerHost = opts.MaxConcurrency
		if opts.Targets != nil {
			t.targets = newTargetFilter(opts.Targets)
			t.targets.restrict(ht)
		}
		base = ht
	}
	t.secure, t.insecure = base, base
	if ht, ok := base.(*http.Transport); ok && len(insecureHosts) > 0 {
		in := ht.Clone()
		if in.TLSClientConfig == nil {
			in.TLSClientConfig = &tls.Config{}
		}
		in.TLSClientConfig.InsecureSkipVerify = true // only for InsecureRegistries
		t.insecure = in
	}
	return t
}

// RoundTrip sends req, retrying by vouch's policy within req's deadline.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	rt := &retry.Transport{
		Base: roundTripperFunc(t.attempt),
		Policy: func() retry.Policy {
			return &retryPolicy{ctx: ctx, maxRetries: t.maxRetries, maxWait: t.maxRetryWait}
		},
	}
	return rt.RoundTrip(req)
}

// attempt sends req once, holding a slot of its host until the response
// body is closed. Errors are returned as they are: net/http recognises
// some of them (a TLS record that is plain HTTP) by their type.
func (t *transport) attempt(req *http.Request) (*http.Response, error) {
	host := req.URL.Host
	if t.targets != nil {
		if err := t.targets.checkRequest(req.URL); err != nil {
			return nil, err
		}
	}
	release, err := t.acquire(req.Context(), host)
	if err != nil {
		return nil, err
	}
	base := t.secure
	if req.URL.Scheme == "https" && t.insecureHosts[host] {
		base = t.insecure
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		release()
		return nil, err
	}
	if t.onResponse != nil {
		t.onResponse(host, req.Method, resp.StatusCode)
	}
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: release}
	return resp, nil
}

// slotsKey keys the context value that records the slots held by one
// Repository call.
type slotsKey struct{}

// heldSlots counts the slots one Repository call holds per host. oras-go
// sometimes sends a request while the body of the previous one is still open
// (a HEAD when a GET has no Content-Length); such a nested request shares
// the call's slot instead of waiting for one it might never get.
type heldSlots struct {
	mu sync.Mutex
	n  map[string]int
}

// withSlots marks ctx as one Repository call for the concurrency limit.
func withSlots(ctx context.Context) context.Context {
	if _, ok := ctx.Value(slotsKey{}).(*heldSlots); ok {
		return ctx
	}
	return withOwnSlots(ctx)
}

// withOwnSlots marks ctx as a call of its own for the concurrency limit, for
// requests that a Repository call sends alongside its others: they take
// slots of their own rather than share the call's.
func withOwnSlots(ctx context.Context) context.Context {
	return context.WithValue(ctx, slotsKey{}, &heldSlots{n: map[string]int{}})
}

// acquire takes a slot of host, waiting no longer than ctx allows, and
// returns the function that gives it back (safe to call more than once).
func (t *transport) acquire(ctx context.Context, host string) (func(), error) {
	held, _ := ctx.Value(slotsKey{}).(*heldSlots)
	if held != nil {
		held.mu.Lock()
		if held.n[host] > 0 {
			held.n[host]++
			held.mu.Unlock()
			return onceFunc(func() { held.dec(host) }), nil
		}
		held.mu.Unlock()
	}
	sem := t.sem(host)
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if held != nil {
		held.mu.Lock()
		held.n[host]++
		held.mu.Unlock()
	}
	return onceFunc(func() {
		if held != nil {
			held.dec(host)
		}
		<-sem
	}), nil
}

func (h *heldSlots) dec(host string) {
	h.mu.Lock()
	h.n[host]--
	h.mu.Unlock()
}

func (t *transport) sem(host string) chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sems[host]
	if s == nil {
		s = make(chan struct{}, t.maxConcurrency)
		t.sems[host] = s
	}
	return s
}

func onceFunc(f func()) func() {
	var once sync.Once
	return func() { once.Do(f) }
}

// releasingBody gives the host slot back when the body is closed.
type releasingBody struct {
	io.ReadCloser
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// retryPolicy is vouch's retry.Policy for one request: retry on 408, 429,
// 502, 503, 504 and on dial timeouts and connection resets; wait by
// exponential backoff with jitter, or by Retry-After on 429 and 503; cap each
// wait; never wait past the request's deadline.
type retryPolicy struct {
	ctx        context.Context
	maxRetries int
	maxWait    time.Duration
}

// backoffBase is the first backoff; it doubles with each retry.
const backoffBase = 200 * time.Millisecond

func (p *retryPolicy) Retry(attempt int, resp *http.Response, err error) (time.Duration, error) {
	if attempt >= p.maxRetries || p.ctx.Err() != nil {
		return -1, nil
	}
	if err != nil {
		// Dial timeouts, connection resets, truncated responses.
		if ok, _ := retry.DefaultPredicate(nil, err); !ok {
			return -1, nil
		}
	} else if !retryableStatus(resp.StatusCode) {
		return -1, nil
	}
	wait, ok := retryAfter(resp, time.Now())
	if !ok {
		d := backoffBase << min(attempt, 20)
		wait = d/2 + rand.N(d/2+1) // jitter over the upper half
	}
	wait = min(wait, p.maxWait)
	if deadline, ok := p.ctx.Deadline(); ok && time.Until(deadline) <= wait {
		// Waiting would outlive the caller: give up now with this answer.
		return -1, nil
	}
	return wait, nil
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryAfter reads the Retry-After header of a 429 or 503 response, in
// delta-seconds or HTTP-date form (RFC 9110, section 10.2.3).
func retryAfter(resp *http.Response, now time.Time) (time.Duration, bool) {
	if resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return 0, false
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(time.Hour/time.Second))) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}
