// Package gatekeeper is vouch's external data provider for OPA Gatekeeper:
// the verify endpoint answers one item per image (value: isSuccess and
// vouch's report), the mutate endpoint pins images to their digests.
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
	"strings"
	"sync"
	"time"

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

// Value is the value of a verify item: vouch's report (subject, pinned
// reference, verdict, reason, mode and the graph) with the fields Ratify's
// constraint templates read (isSuccess, traceID, timestamp), so that they
// work unchanged.
type Value struct {
	// IsSuccess is true when the verdict is allowed.
	IsSuccess bool `json:"isSuccess"`
	// TraceID is the request's id, as in vouch's logs.
	TraceID string `json:"traceID"`
	// Timestamp is when the answer was given, RFC 3339 in UTC.
	Timestamp string `json:"timestamp"`
	*vouch.Report
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
	// TraceID returns the id of the request ctx belongs to, for
	// Value.TraceID. Optional.
	TraceID func(ctx context.Context) string
	// Now is the clock for Value.Timestamp. Optional; default time.Now.
	Now func() time.Time
}

// Provider serves Gatekeeper's external data requests. The caller bounds
// the request body (http.MaxBytesReader) and the time (the request's
// context deadline): keys not answered by then get a timeout error.
type Provider struct {
	opts Options
}

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
	return &Provider{opts: opts}, nil
}

// Verify serves the verify endpoint: each item's value is a Value; keys
// vouch could not decide on (unreachable registry, timeout, malformed
// reference) get an error instead.
func (p *Provider) Verify(w http.ResponseWriter, r *http.Request) {
	p.serve(w, r, p.verifyKey)
}

// Mutate serves the mutate endpoint: each item's value is the image pinned
// to its digest, "registry/repository@sha256:…" (normalised, tag dropped,
// as Ratify answers); a key that names a digest comes back unchanged.
func (p *Provider) Mutate(w http.ResponseWriter, r *http.Request) {
	p.serve(w, r, p.mutateKey)
}

func (p *Provider) verifyKey(ctx context.Context, ns, image string) Item {
	report, err := p.opts.Decider.Verify(ctx, ns, image)
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
		return Item{Error: msg}
	}
	if report.Verdict != vouch.Allowed {
		p.opts.Logger.InfoContext(ctx, "denied", "namespace", ns, "image", image, "reason", report.Reason)
	}
	return Item{Value: Value{
		IsSuccess: report.Verdict == vouch.Allowed,
		TraceID:   p.opts.TraceID(ctx),
		Timestamp: p.opts.Now().UTC().Format(time.RFC3339),
		Report:    report,
	}}
}

func (p *Provider) mutateKey(ctx context.Context, ns, image string) Item {
	ref, err := p.opts.Decider.Resolve(ctx, ns, image)
	if err != nil {
		msg := "vouch could not resolve the image's digest: " + err.Error()
		if ctx.Err() != nil {
			msg = "timeout: vouch could not resolve the image's digest within the request's time budget"
		}
		return Item{Error: msg}
	}
	return Item{Value: ref.Name() + "@" + ref.Digest.String()}
}

// serve decodes a request, answers its distinct keys concurrently and
// writes the response.
func (p *Provider) serve(w http.ResponseWriter, r *http.Request, answer func(ctx context.Context, ns, image string) Item) {
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
	items := make([]Item, len(keys))
	ctx := r.Context()
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(p.opts.Concurrency, len(keys)) {
		wg.Go(func() {
			for i := range jobs {
				items[i] = p.answerKey(ctx, keys[i], answer)
			}
		})
	}
	for i := range keys {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	writeJSON(w, http.StatusOK, ProviderResponse{APIVersion: req.APIVersion, Kind: KindResponse, Response: Response{Idempotent: true, Items: items}})
}

func (p *Provider) answerKey(ctx context.Context, key string, answer func(ctx context.Context, ns, image string) Item) Item {
	ns, image, err := SplitKey(key)
	var item Item
	if err != nil {
		item.Error = err.Error()
	} else {
		item = answer(ctx, ns, image)
	}
	item.Key = key
	return item
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
