// Package gatekeeper is vouch's external data provider for OPA Gatekeeper:
// the verify endpoint answers one item per image (value: isSuccess,
// vouch's verdict and reason, the nodes that failed, and on request the
// whole report tree), the mutate endpoint pins images to their digests.
//
// The protocol is Gatekeeper's, defined here rather than imported:
// https://open-policy-agent.github.io/gatekeeper/website/docs/externaldata
// Keys may start with "[namespace]", Ratify's convention for choosing the
// namespace whose policy applies.
package gatekeeper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/vouch-project/vouch"
)

// API versions and kinds of the external data protocol.
const (
	// APIVersion is the current version, which responses use unless the
	// request used APIVersionAlpha.
	APIVersion = "externaldata.gatekeeper.sh/v1beta1"
	// APIVersionAlpha is the older version, still accepted.
	APIVersionAlpha = "externaldata.gatekeeper.sh/v1alpha1"
	// KindRequest and KindResponse are the kinds of the two messages.
	KindRequest  = "ProviderRequest"
	KindResponse = "ProviderResponse"
)

// Defaults of Options.
const (
	DefaultMaxKeys     = 1000
	DefaultConcurrency = 16
)

// MaxFailures bounds the failed nodes a verify value lists; its
// failuresOmitted counts the others.
const MaxFailures = 10

// ProviderRequest is what Gatekeeper sends.
type ProviderRequest struct {
	// APIVersion is APIVersion or APIVersionAlpha.
	APIVersion string `json:"apiVersion"`
	// Kind is KindRequest.
	Kind string `json:"kind"`
	// Request holds the keys.
	Request Request `json:"request"`
}

// Request lists the keys to answer: image references, each optionally
// prefixed with "[namespace]".
type Request struct {
	Keys []string `json:"keys"`
}

// ProviderResponse is what the provider answers.
type ProviderResponse struct {
	// APIVersion echoes the request's.
	APIVersion string `json:"apiVersion"`
	// Kind is KindResponse.
	Kind string `json:"kind"`
	// Response holds the items.
	Response Response `json:"response"`
}

// Response holds one item per distinct key, or a system error.
type Response struct {
	// Idempotent is true: the same keys get the same answers (until the
	// registry or the policy changes). Gatekeeper requires it for mutation.
	Idempotent bool `json:"idempotent"`
	// Items answer the keys, in the order they were first asked.
	Items []Item `json:"items"`
	// SystemError says why the whole request failed. Optional.
	SystemError string `json:"systemError,omitempty"`
}

// Item answers one key with a value, or an error when vouch could not
// answer it.
type Item struct {
	Key   string `json:"key"`
	Value any    `json:"value,omitempty"`
	Error string `json:"error,omitempty"`
}

// Failure is a node of a report's graph that failed a check or could not
// be checked.
type Failure struct {
	// Digest is the node's manifest digest.
	Digest digest.Digest `json:"digest"`
	// ArtifactType is the node's artifact type; empty for images.
	ArtifactType string `json:"artifactType,omitempty"`
	// Outcome is failed or error.
	Outcome vouch.Outcome `json:"outcome"`
	// Reason is the first failing verifier's reason, prefixed with its
	// name.
	Reason string `json:"reason"`
}

// verdictFields are the fields of a verify value that depend on the report
// alone, in the value's order: their encoding is kept per cached verdict
// (see encodings) and spliced into each answer (see appendValue).
type verdictFields struct {
	// Verdict is allowed or denied.
	Verdict vouch.Verdict `json:"verdict"`
	// Reason explains the verdict: the requirement that failed, or what
	// satisfied the policy.
	Reason string `json:"reason"`
	// Mode is the policy mode that applied (enforce, warn, audit).
	// Optional.
	Mode vouch.Mode `json:"mode,omitempty"`
	// Waived is true when the requirements were not met and the mode let
	// the image run. Optional.
	Waived bool `json:"waived,omitempty"`
	// Failures lists the nodes of the graph that failed a check or could
	// not be checked, parents first, at most MaxFailures. Optional.
	Failures []Failure `json:"failures,omitempty"`
	// FailuresOmitted counts the failed nodes beyond MaxFailures. Optional.
	FailuresOmitted int `json:"failuresOmitted,omitempty"`
	// Graph is the report tree (report-format.md), when asked for.
	// Optional.
	Graph *vouch.Node `json:"graph,omitempty"`
}

func newVerdict(r *vouch.Report, graph bool) verdictFields {
	f := verdictFields{Verdict: r.Verdict, Reason: r.Reason, Mode: r.Mode, Waived: r.Waived}
	if r.Root != nil {
		r.Root.Walk(func(n *vouch.Node, _ int) {
			if n.Outcome != vouch.Failed && n.Outcome != vouch.Errored {
				return
			}
			if len(f.Failures) == MaxFailures {
				f.FailuresOmitted++
				return
			}
			f.Failures = append(f.Failures, Failure{Digest: n.Digest, ArtifactType: n.ArtifactType, Outcome: n.Outcome, Reason: n.Reason})
		})
	}
	if graph {
		f.Graph = r.Root
	}
	return f
}

// encodeVerdict returns the encoding of r's verdict fields, with the graph
// when graph is true.
func encodeVerdict(r *vouch.Report, graph bool) ([]byte, error) {
	return json.Marshal(newVerdict(r, graph))
}

// valueParts are what a verify value is encoded from: the per-request
// fields and the encoded verdictFields.
type valueParts struct {
	report             *vouch.Report
	traceID, timestamp string
	verdict            []byte
}

// appendValue appends the encoding of a verify value, spliced from the
// encoded verdict fields: the same bytes as json.Marshal gives for the
// value as a struct of its fields, in this order (the tests check it):
//
//	isSuccess  true when the verdict is allowed, as Ratify's constraint
//	           templates read it
//	traceID    the request's id, as in vouch's logs
//	timestamp  when the answer was given, RFC 3339 in UTC
//	subject    the image as the key named it
//	reference  the image pinned to the digest that was verified
//	...        the verdictFields: verdict, reason, mode, waived, failures,
//	           failuresOmitted and, when asked for, graph
//
// The graph (every artifact and every verifier's result) is there only
// when asked for (Options.Graph, or "?graph=true" on the request's URL),
// because Gatekeeper decodes every answer and the graph is most of its
// size.
func appendValue(b []byte, v *valueParts) []byte {
	b = append(b, `{"isSuccess":`...)
	b = strconv.AppendBool(b, v.report.Verdict == vouch.Allowed)
	b = append(b, `,"traceID":`...)
	b = appendString(b, v.traceID)
	b = append(b, `,"timestamp":`...)
	b = appendString(b, v.timestamp)
	b = append(b, `,"subject":`...)
	b = appendString(b, v.report.Subject)
	b = append(b, `,"reference":`...)
	b = appendString(b, v.report.Reference)
	b = append(b, ',')
	return append(b, v.verdict[1:]...) // verdict is an object: drop its '{'
}

// appendString appends s as a JSON string, as encoding/json writes it
// (HTML characters escaped).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

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
	encodings encodings      // of cached verdicts, when cached is not nil
	buffers   sync.Pool      // of *[]byte, for answers
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
	return p, nil
}

// Verify serves the verify endpoint: each item's value is vouch's verdict
// on the image (see appendValue for its fields); keys
// vouch could not decide on (unreachable registry, timeout, malformed
// reference) get an error instead. "?graph=true" (or false) on the URL
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
	p.serve(w, r, func(ctx context.Context, ns, image string) answer {
		return p.verifyKey(ctx, ns, image, graph, traceID, timestamp)
	})
}

// Mutate serves the mutate endpoint: each item's value is the image pinned
// to its digest, "registry/repository@sha256:…" (normalised, tag dropped,
// as Ratify answers); a key that names a digest comes back unchanged.
func (p *Provider) Mutate(w http.ResponseWriter, r *http.Request) {
	p.serve(w, r, p.mutateKey)
}

// answer is one key's answer: an Item, or for a verify value the parts
// the value is encoded from.
type answer struct {
	Item
	value *valueParts
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
	return answer{value: &valueParts{report: report, traceID: traceID, timestamp: timestamp, verdict: verdict}}
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

// serve decodes a request, answers its distinct keys concurrently and
// writes the response.
func (p *Provider) serve(w http.ResponseWriter, r *http.Request, answerFn func(ctx context.Context, ns, image string) answer) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, APIVersion, "method "+r.Method+" not allowed: POST a ProviderRequest")
		return
	}
	req, status, err := decode(r.Body, p.opts.MaxKeys)
	if err != nil {
		writeError(w, status, APIVersion, err.Error())
		return
	}
	keys := distinct(req.Request.Keys)
	answers := make([]answer, len(keys))
	ctx := r.Context()
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(p.opts.Concurrency, len(keys)) {
		wg.Go(func() {
			for i := range jobs {
				answers[i] = p.answerKey(ctx, keys[i], answerFn)
			}
		})
	}
	for i := range keys {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	buf, _ := p.buffers.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	*buf = appendResponse((*buf)[:0], req.APIVersion, answers)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(*buf)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(*buf)
	if cap(*buf) <= maxPooledBuffer {
		p.buffers.Put(buf)
	}
}

// appendResponse appends a successful ProviderResponse, encoded as
// json.Encoder does (with a trailing newline); verify values are spliced
// from their encoded parts instead of encoded by reflection.
func appendResponse(b []byte, apiVersion string, answers []answer) []byte {
	b = append(b, `{"apiVersion":`...)
	b = appendString(b, apiVersion)
	b = append(b, `,"kind":"`+KindResponse+`","response":{"idempotent":true,"items":[`...)
	for i, a := range answers {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"key":`...)
		b = appendString(b, a.Key)
		switch {
		case a.value != nil:
			b = append(b, `,"value":`...)
			b = appendValue(b, a.value)
		case a.Value != nil:
			data, err := json.Marshal(a.Value)
			if err != nil {
				a.Error = "vouch could not encode its answer: " + err.Error()
				break
			}
			b = append(b, `,"value":`...)
			b = append(b, data...)
		}
		if a.Error != "" {
			b = append(b, `,"error":`...)
			b = appendString(b, a.Error)
		}
		b = append(b, '}')
	}
	return append(b, "]}}\n"...)
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

// SplitKey splits a key into its namespace and image: "[ns]image" names
// the namespace ns, a key without the prefix names none.
func SplitKey(key string) (namespace, image string, err error) {
	if !strings.HasPrefix(key, "[") {
		return "", key, nil
	}
	end := strings.IndexByte(key, ']')
	if end < 0 {
		return "", "", fmt.Errorf("key %q: a namespace prefix needs a closing ']'", key)
	}
	namespace, image = key[1:end], key[end+1:]
	if !validNamespace(namespace) {
		return "", "", fmt.Errorf("key %q: %q is not a namespace name", key, namespace)
	}
	return namespace, image, nil
}

// validNamespace checks a Kubernetes namespace name: an RFC 1123 label.
func validNamespace(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// decode reads a ProviderRequest, returning the HTTP status for the error
// when it is not one.
func decode(body io.Reader, maxKeys int) (*ProviderRequest, int, error) {
	var req ProviderRequest
	dec := json.NewDecoder(body)
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is over the limit of %d bytes", tooBig.Limit)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("malformed ProviderRequest: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is over the limit of %d bytes", tooBig.Limit)
		}
		return nil, http.StatusBadRequest, errors.New("malformed ProviderRequest: data after the JSON object")
	}
	switch req.APIVersion {
	case APIVersion, APIVersionAlpha:
	default:
		return nil, http.StatusBadRequest, fmt.Errorf("apiVersion %q is not %s or %s", req.APIVersion, APIVersion, APIVersionAlpha)
	}
	if req.Kind != KindRequest {
		return nil, http.StatusBadRequest, fmt.Errorf("kind %q is not %s", req.Kind, KindRequest)
	}
	if n := len(req.Request.Keys); n > maxKeys {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("%d keys is over the limit of %d per request", n, maxKeys)
	}
	return &req, 0, nil
}

// distinct returns keys without repeats, in the order first seen.
func distinct(keys []string) []string {
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
