package gatekeeper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vouch-project/vouch"
)

// Defaults of Options.
const (
	DefaultMaxKeys = 1000
	// DefaultConcurrency is high because a key waits on registry round
	// trips, not on the CPU: Gatekeeper's audit sends the images of many
	// Pods in one request, and 16 at once made a cold request of 100
	// images take 9 waves of round trips (B5). The registries are still
	// bounded per host by the store.
	DefaultConcurrency = 64
)

// CachingDecider is a Decider that says which cached verdict each report
// comes from; *engine.Engine is one. The Provider then encodes each cached
// verdict once, and splices that encoding into every answer that reports
// it, instead of encoding the same verdict for every request.
type CachingDecider interface {
	Decider
	// VerifyCached is Verify that also returns the id of the cached verdict
	// the report comes from: the same id, the same report but for its
	// Subject and Reference. The id is 0 when the verdict is not cached.
	VerifyCached(ctx context.Context, namespace, image string) (report *vouch.Report, id uint64, err error)
}

// LocalDecider is a CachingDecider that can also answer some images at
// once, from memory; *engine.Engine is one. The Provider answers those
// keys in the request's goroutine and spreads only the others over its
// workers.
type LocalDecider interface {
	CachingDecider
	// VerifyLocal is VerifyCached for an image it can answer without I/O
	// or waiting; false (having done nothing) for any other.
	VerifyLocal(ctx context.Context, namespace, image string) (report *vouch.Report, id uint64, ok bool)
}

// Decider decides on and pins images; *engine.Engine is one.
type Decider interface {
	// Verify returns the report on image under namespace's policy; an
	// error means vouch could not decide.
	Verify(ctx context.Context, namespace, image string) (*vouch.Report, error)
	// Resolve pins image to its digest.
	Resolve(ctx context.Context, namespace, image string) (vouch.Reference, error)
}

// Options configure a Provider.
type Options struct {
	// Decider answers keys. Required.
	Decider Decider
	// MaxKeys bounds the keys of one request. Optional; default
	// DefaultMaxKeys.
	MaxKeys int
	// Concurrency bounds the keys answered at once for one request.
	// Optional; default DefaultConcurrency.
	Concurrency int
	// Logger logs denials and keys vouch could not answer. Optional;
	// default slog.Default().
	Logger *slog.Logger
	// TraceID returns the id of the request ctx belongs to, for a verify
	// value's traceID. Optional.
	TraceID func(ctx context.Context) string
	// Now is the clock for a verify value's timestamp. Optional; default
	// time.Now.
	Now func() time.Time
	// Graph puts the report tree in every verify value (its graph).
	// Optional; default false: the graph only for requests whose URL asks
	// with "?graph=true".
	Graph bool
}

// Provider serves Gatekeeper's external data requests. The caller bounds
// the request body (http.MaxBytesReader) and the time (the request's
// context deadline): keys not answered by then get a timeout error.
type Provider struct {
	opts      Options
	cached    CachingDecider // nil when the Decider is not one
	local     LocalDecider   // nil when the Decider is not one
	encodings encodings      // of cached verdicts, when cached is not nil
	buffers   sync.Pool      // of *[]byte, for requests and answers
}

// maxPooledBuffer bounds the answer buffers kept for reuse.
const maxPooledBuffer = 1 << 20

// New returns a Provider for opts.
func New(opts Options) (*Provider, error) {
	if opts.Decider == nil {
		return nil, errors.New("gatekeeper: Options.Decider is required")
	}
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = DefaultMaxKeys
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.TraceID == nil {
		opts.TraceID = func(context.Context) string { return "" }
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Provider{opts: opts}
	p.cached, _ = opts.Decider.(CachingDecider)
	p.local, _ = opts.Decider.(LocalDecider)
	return p, nil
}

// Verify serves the verify endpoint: each item's value is vouch's verdict
// on the image (its fields are in the package documentation); keys vouch
// could not decide on (unreachable registry, timeout, malformed reference)
// get an error instead. "?graph=true" (or false) on the URL
// overrides Options.Graph for the request.
func (p *Provider) Verify(w http.ResponseWriter, r *http.Request) {
	graph := p.opts.Graph
	if r.URL.RawQuery != "" {
		if g := r.URL.Query().Get("graph"); g != "" {
			var err error
			if graph, err = strconv.ParseBool(g); err != nil {
				writeError(w, http.StatusBadRequest, APIVersion, fmt.Sprintf("query parameter graph=%q is not true or false", g))
				return
			}
		}
	}
	traceID, timestamp := p.opts.TraceID(r.Context()), p.opts.Now().UTC().Format(time.RFC3339)
	var local func(ctx context.Context, ns, image string) (answer, bool)
	if p.local != nil {
		local = func(ctx context.Context, ns, image string) (answer, bool) {
			report, id, ok := p.local.VerifyLocal(ctx, ns, image)
			if !ok {
				return answer{}, false
			}
			verdict, err := p.encodings.verdict(report, id, graph)
			return p.verified(ctx, ns, image, report, verdict, err, traceID, timestamp), true
		}
	}
	p.serve(w, r, func(ctx context.Context, ns, image string) answer {
		return p.verifyKey(ctx, ns, image, graph, traceID, timestamp)
	}, local)
}

// Mutate serves the mutate endpoint: each item's value is the image pinned
// to its digest, "registry/repository@sha256:…" (normalised, tag dropped,
// as Ratify answers); a key that names a digest comes back unchanged.
func (p *Provider) Mutate(w http.ResponseWriter, r *http.Request) {
	p.serve(w, r, p.mutateKey, nil)
}

// answer is one key's answer: an Item, or for a verify value the parts
// the value is encoded from.
type answer struct {
	Item
	value valueParts // a verify value when value.report is not nil
}

func (p *Provider) verifyKey(ctx context.Context, ns, image string, graph bool, traceID, timestamp string) answer {
	var report *vouch.Report
	var verdict []byte
	var err error
	if p.cached != nil {
		var id uint64
		report, id, err = p.cached.VerifyCached(ctx, ns, image)
		if err == nil {
			verdict, err = p.encodings.verdict(report, id, graph)
		}
	} else {
		report, err = p.opts.Decider.Verify(ctx, ns, image)
		if err == nil {
			verdict, err = encodeVerdict(report, graph)
		}
	}
	return p.verified(ctx, ns, image, report, verdict, err, traceID, timestamp)
}

// verified is the answer for image given the decider's report, its
// encoded verdict fields and the error of either.
func (p *Provider) verified(ctx context.Context, ns, image string, report *vouch.Report, verdict []byte, err error, traceID, timestamp string) answer {
	if err != nil {
		reason := err.Error()
		if report != nil && report.Reason != "" {
			reason = report.Reason
		}
		msg := "vouch could not decide: " + strings.TrimPrefix(reason, "could not decide: ")
		if ctx.Err() != nil {
			msg = "timeout: vouch could not decide within the request's time budget"
		}
		p.opts.Logger.WarnContext(ctx, "undecided", "namespace", ns, "image", image, "error", msg)
		return answer{Item: Item{Error: msg}}
	}
	if report.Verdict != vouch.Allowed {
		p.opts.Logger.InfoContext(ctx, "denied", "namespace", ns, "image", image, "reason", report.Reason)
	}
	return answer{value: valueParts{report: report, traceID: traceID, timestamp: timestamp, verdict: verdict}}
}

func (p *Provider) mutateKey(ctx context.Context, ns, image string) answer {
	ref, err := p.opts.Decider.Resolve(ctx, ns, image)
	if err != nil {
		msg := "vouch could not resolve the image's digest: " + err.Error()
		if ctx.Err() != nil {
			msg = "timeout: vouch could not resolve the image's digest within the request's time budget"
		}
		return answer{Item: Item{Error: msg}}
	}
	return answer{Item: Item{Value: ref.Name() + "@" + ref.Digest.String()}}
}

// serve decodes a request, answers its distinct keys and writes the
// response: with localFn, when set and it can, in this goroutine, else
// with answerFn, concurrently.
func (p *Provider) serve(w http.ResponseWriter, r *http.Request, answerFn func(ctx context.Context, ns, image string) answer, localFn func(ctx context.Context, ns, image string) (answer, bool)) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, APIVersion, "method "+r.Method+" not allowed: POST a ProviderRequest")
		return
	}
	body, _ := p.buffers.Get().(*[]byte)
	if body == nil {
		body = new([]byte)
	}
	req, status, err := decode(r.Body, p.opts.MaxKeys, body)
	p.release(body)
	if err != nil {
		writeError(w, status, APIVersion, err.Error())
		return
	}
	keys := distinct(req.Request.Keys)
	answers := make([]answer, len(keys))
	ctx := r.Context()
	pending := make([]int, 0, len(keys))
	for i, key := range keys {
		if localFn != nil {
			if ns, image, err := SplitKey(key); err == nil {
				if a, ok := localFn(ctx, ns, image); ok {
					a.Key = key
					answers[i] = a
					continue
				}
			}
		}
		pending = append(pending, i)
	}
	if len(pending) > 0 {
		jobs := make(chan int)
		var wg sync.WaitGroup
		for range min(p.opts.Concurrency, len(pending)) {
			wg.Go(func() {
				for i := range jobs {
					answers[i] = p.answerKey(ctx, keys[i], answerFn)
				}
			})
		}
		for _, i := range pending {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
	}
	buf, _ := p.buffers.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	*buf = appendResponse((*buf)[:0], req.APIVersion, answers)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(*buf)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(*buf)
	p.release(buf)
}

// release puts buf back in the pool, unless it is too big to keep.
func (p *Provider) release(buf *[]byte) {
	if cap(*buf) <= maxPooledBuffer {
		p.buffers.Put(buf)
	}
}

func (p *Provider) answerKey(ctx context.Context, key string, answerFn func(ctx context.Context, ns, image string) answer) answer {
	ns, image, err := SplitKey(key)
	var a answer
	if err != nil {
		a.Error = err.Error()
	} else {
		a = answerFn(ctx, ns, image)
	}
	a.Key = key
	return a
}

// distinct returns keys without repeats, in the order first seen.
func distinct(keys []string) []string {
	if len(keys) <= 16 {
		// Few keys (a Pod's images): no map.
		out := make([]string, 0, len(keys))
		for _, k := range keys {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
		return out
	}
	seen := make(map[string]bool, len(keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

func writeError(w http.ResponseWriter, status int, apiVersion, msg string) {
	writeJSON(w, status, ProviderResponse{APIVersion: apiVersion, Kind: KindResponse, Response: Response{Idempotent: true, Items: []Item{}, SystemError: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
