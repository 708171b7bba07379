// Package loadgen sends verification requests to a Gatekeeper external
// data provider (externaldata.gatekeeper.sh/v1beta1 ProviderRequest, as
// Gatekeeper sends them) or to a Kubernetes validating admission webhook
// (admission.k8s.io/v1 AdmissionReview), and records latency percentiles,
// answers slower than a budget (Gatekeeper's webhook gives external data 3
// s by default, then fails open) and errors.
//
// Two modes: open loop (Options.Rate > 0), where request i is sent at
// start + i/Rate whether or not earlier ones have answered, and its latency
// is measured from that planned time, so a server that falls behind is
// charged for the queue it builds (no coordinated omission); and closed
// loop (Options.Rate == 0), where Options.Workers clients each send their
// next request when the previous one answers, to find the rate at
// saturation.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultBudget is Gatekeeper's default validating-webhook timeout.
const DefaultBudget = 3 * time.Second

// Protocol builds request bodies and checks answers.
type Protocol interface {
	// Body returns the request body for keys (image references).
	Body(keys []string) ([]byte, error)
	// Check reads an answer with HTTP status 200 and returns how many keys
	// were answered with an error, or an error when the whole request
	// failed (a system error, an undecodable body).
	Check(body []byte, keys []string) (keyErrors int, err error)
}

// Gatekeeper is the external data provider protocol
// (https://open-policy-agent.github.io/gatekeeper/website/docs/externaldata#providers).
type Gatekeeper struct{}

type providerRequest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Request    struct {
		Keys []string `json:"keys"`
	} `json:"request"`
}

type providerResponse struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Response   struct {
		Idempotent  bool   `json:"idempotent"`
		SystemError string `json:"systemError"`
		Items       []struct {
			Key   string          `json:"key"`
			Value json.RawMessage `json:"value"`
			Error string          `json:"error"`
		} `json:"items"`
	} `json:"response"`
}

// Body implements Protocol.
func (Gatekeeper) Body(keys []string) ([]byte, error) {
	var r providerRequest
	r.APIVersion, r.Kind = "externaldata.gatekeeper.sh/v1beta1", "ProviderRequest"
	r.Request.Keys = keys
	return json.Marshal(r)
}

// Check implements Protocol: a systemError fails the request; items with
// an error, and keys without an item, are key errors.
func (Gatekeeper) Check(body []byte, keys []string) (int, error) {
	var r providerResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("decode ProviderResponse: %w", err)
	}
	if r.Response.SystemError != "" {
		return 0, fmt.Errorf("systemError: %s", r.Response.SystemError)
	}
	answered := make(map[string]bool, len(r.Response.Items))
	bad := 0
	for _, it := range r.Response.Items {
		answered[it.Key] = true
		if it.Error != "" {
			bad++
		}
	}
	for _, k := range keys {
		if !answered[k] {
			bad++
		}
	}
	return bad, nil
}

// Quick implements QuickChecker: an answer that ends as a JSON object,
// holds no "systemError" and no "error" member, and names every key as an
// item's "key" has every key answered without an error. It is a search
// for substrings, without decoding: a false answer says nothing (Check
// decides).
func (Gatekeeper) Quick(body []byte, keys []string) bool {
	b := bytes.TrimRight(body, " \n")
	if len(b) == 0 || b[len(b)-1] != '}' || bytes.Contains(b, []byte(`"error":`)) || bytes.Contains(b, []byte(`"systemError":`)) {
		return false
	}
	var want []byte
	for _, k := range keys {
		q, err := json.Marshal(k)
		if err != nil {
			return false
		}
		want = append(append(want[:0], `"key":`...), q...)
		if !bytes.Contains(b, want) {
			return false
		}
	}
	return true
}

// QuickChecker is a Protocol that can also check an answer without
// decoding it, for load that the decoding would slow: the generator shares
// the machine's cores with the server it measures.
type QuickChecker interface {
	// Quick reports whether body surely answers every key without an
	// error; false means only that Check must decide.
	Quick(body []byte, keys []string) bool
}

// Admission is the validating admission webhook protocol
// (https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#request):
// one Pod CREATE per request, one container per key.
type Admission struct{}

// Body implements Protocol.
func (Admission) Body(keys []string) ([]byte, error) {
	containers := make([]map[string]string, len(keys))
	for i, k := range keys {
		containers[i] = map[string]string{"name": fmt.Sprintf("c%d", i), "image": k}
	}
	pod := map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "bench", "namespace": "default"},
		"spec":     map[string]any{"containers": containers},
	}
	review := map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid":       "00000000-0000-0000-0000-000000000000",
			"kind":      map[string]string{"group": "", "version": "v1", "kind": "Pod"},
			"resource":  map[string]string{"group": "", "version": "v1", "resource": "pods"},
			"namespace": "default", "operation": "CREATE",
			"userInfo": map[string]any{"username": "bench"},
			"object":   pod,
		},
	}
	return json.Marshal(review)
}

// Check implements Protocol: a denied Pod counts as one key error per key
// (the webhook does not say which); an answer without a response fails.
func (Admission) Check(body []byte, keys []string) (int, error) {
	var r struct {
		Response *struct {
			Allowed bool `json:"allowed"`
		} `json:"response"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("decode AdmissionReview: %w", err)
	}
	if r.Response == nil {
		return 0, fmt.Errorf("AdmissionReview without a response")
	}
	if !r.Response.Allowed {
		return len(keys), nil
	}
	return 0, nil
}

// Options configure a run.
type Options struct {
	// URL is the endpoint, e.g. https://127.0.0.1:8443/gatekeeper/v1/verify.
	// Required unless URLs is set.
	URL string
	// URLs are the endpoints of several replicas: request i goes to
	// URLs[i%len(URLs)], as a Kubernetes Service spreads requests.
	// Optional.
	URLs []string
	// Client sends the requests. Optional; default a client with
	// Timeout.
	Client *http.Client
	// Protocol builds bodies and checks answers. Required.
	Protocol Protocol
	// Keys returns the keys of request i. Required.
	Keys func(i int) []string
	// Requests is how many requests to send. Required unless Duration is
	// set; with both, the run stops at whichever comes first.
	Requests int
	// Duration bounds the sending. Optional.
	Duration time.Duration
	// Rate is the open-loop arrival rate in requests per second. Optional;
	// 0 means closed loop with Workers clients.
	Rate float64
	// Workers is the number of closed-loop clients. Optional; default 1.
	Workers int
	// CheckEvery decodes one answer in CheckEvery in full (Protocol.Check),
	// and checks the others with QuickChecker when the Protocol is one,
	// decoding those it does not pass. Optional; default 0 (or 1): every
	// answer decoded.
	CheckEvery int
	// Budget is the latency above which an answer is counted as over
	// budget. Optional; default DefaultBudget.
	Budget time.Duration
	// Timeout bounds one request; a request that times out is an error.
	// Optional; default 30 s.
	Timeout time.Duration
	// MaxInFlight bounds the open-loop requests outstanding at once; the
	// arrivals that find it full are counted as Dropped. Optional; default
	// 10,000.
	MaxInFlight int
}

// Result is what a run measured.
type Result struct {
	// Sent is the requests sent; Dropped the open-loop arrivals not sent
	// because MaxInFlight requests were outstanding.
	Sent, Dropped int
	// Latencies of every request that got an answer, in the order they
	// answered.
	Latencies []time.Duration
	// ByRequest holds each request's latency by its index i, 0 for a
	// request that failed or was not sent (to see how latency moves over
	// a run: a cold start, then a warm cache).
	ByRequest []time.Duration
	// OverBudget counts answers (and errors) later than Options.Budget.
	OverBudget int
	// Errors counts requests that failed, by class: "transport" (no
	// answer, timeout), "status NNN", "system" (systemError, undecodable).
	Errors map[string]int
	// KeyErrors counts keys answered with an error (Gatekeeper) or denied
	// (admission); KeyErrorRequests the requests with at least one.
	KeyErrors, KeyErrorRequests int
	// Unverified counts requests that failed, answered later than the
	// budget, or answered a key with an error: under Gatekeeper, pods
	// admitted without a verdict (it fails open) or not admitted.
	Unverified int
	// Elapsed is the time from the first send to the last answer.
	Elapsed time.Duration
	// FirstError is the first error seen, for the log.
	FirstError string
}

// ErrorCount is the number of failed requests.
func (r *Result) ErrorCount() int {
	n := 0
	for _, v := range r.Errors {
		n += v
	}
	return n
}

// Throughput is answered requests per second over Elapsed.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(len(r.Latencies)) / r.Elapsed.Seconds()
}

// Percentile returns the p-th percentile (0 < p <= 100) of the
// latencies, by the nearest-rank method; 0 with no latencies.
func (r *Result) Percentile(p float64) time.Duration {
	return Percentile(r.Latencies, p)
}

// Max returns the largest latency.
func (r *Result) Max() time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return slices.Max(r.Latencies)
}

// Percentile returns the p-th percentile of ds by the nearest-rank method.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(p/100*float64(len(s)) + 0.999999)
	if rank < 1 {
		rank = 1
	}
	if rank > len(s) {
		rank = len(s)
	}
	return s[rank-1]
}

// String summarises r on one line.
func (r *Result) String() string {
	var errs []string
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		errs = append(errs, fmt.Sprintf("%s %d", k, r.Errors[k]))
	}
	return fmt.Sprintf("sent %d, answered %d in %v (%.0f/s), p50 %v p95 %v p99 %v max %v, over budget %d, errors [%s], key errors %d in %d requests, dropped %d",
		r.Sent, len(r.Latencies), r.Elapsed.Round(time.Millisecond), r.Throughput(),
		r.Percentile(50), r.Percentile(95), r.Percentile(99), r.Max(),
		r.OverBudget, strings.Join(errs, ", "), r.KeyErrors, r.KeyErrorRequests, r.Dropped)
}

// Run sends the requests of opts and returns what it measured. It stops
// early, with what it has, when ctx is done.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if len(opts.URLs) == 0 && opts.URL != "" {
		opts.URLs = []string{opts.URL}
	}
	if len(opts.URLs) == 0 || opts.Protocol == nil || opts.Keys == nil {
		return nil, fmt.Errorf("loadgen: URL, Protocol and Keys are required")
	}
	if opts.Requests <= 0 && opts.Duration <= 0 {
		return nil, fmt.Errorf("loadgen: Requests or Duration is required")
	}
	if opts.Requests <= 0 {
		opts.Requests = int(^uint(0) >> 1)
	}
	if opts.Workers <= 0 {
		opts.Workers = 1
	}
	if opts.Budget <= 0 {
		opts.Budget = DefaultBudget
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 10000
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	r := &runner{opts: opts, res: &Result{Errors: map[string]int{}}}
	if opts.Requests < 1<<24 {
		r.res.ByRequest = make([]time.Duration, opts.Requests)
	}
	start := time.Now()
	if opts.Rate > 0 {
		r.openLoop(ctx, start)
	} else {
		r.closedLoop(ctx, start)
	}
	r.res.Elapsed = time.Since(start)
	return r.res, nil
}

type runner struct {
	opts Options
	mu   sync.Mutex
	res  *Result
}

func (r *runner) openLoop(ctx context.Context, start time.Time) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, r.opts.MaxInFlight)
	interval := time.Duration(float64(time.Second) / r.opts.Rate)
	for i := 0; i < r.opts.Requests; i++ {
		planned := start.Add(time.Duration(i) * interval)
		if r.opts.Duration > 0 && planned.Sub(start) >= r.opts.Duration {
			break
		}
		if d := time.Until(planned); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				wg.Wait()
				return
			case <-t.C:
			}
		}
		select {
		case sem <- struct{}{}:
		default:
			r.mu.Lock()
			r.res.Dropped++
			r.mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.one(ctx, i, planned)
		}()
	}
	wg.Wait()
}

func (r *runner) closedLoop(ctx context.Context, start time.Time) {
	var wg sync.WaitGroup
	var next int
	var nmu sync.Mutex
	take := func() (int, bool) {
		nmu.Lock()
		defer nmu.Unlock()
		if next >= r.opts.Requests || ctx.Err() != nil {
			return 0, false
		}
		if r.opts.Duration > 0 && time.Since(start) >= r.opts.Duration {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for w := 0; w < r.opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := take()
				if !ok {
					return
				}
				r.one(ctx, i, time.Now())
			}
		}()
	}
	wg.Wait()
}

// one sends request i, planned at planned, and records the outcome.
func (r *runner) one(ctx context.Context, i int, planned time.Time) {
	keys := r.opts.Keys(i)
	body, err := r.opts.Protocol.Body(keys)
	if err != nil {
		r.fail("system", err, 0)
		return
	}
	rctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, r.opts.URLs[i%len(r.opts.URLs)], bytes.NewReader(body))
	if err != nil {
		r.fail("system", err, 0)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	r.mu.Lock()
	r.res.Sent++
	r.mu.Unlock()
	resp, err := r.opts.Client.Do(req)
	if err != nil {
		r.fail("transport", err, time.Since(planned))
		return
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	resp.Body.Close()
	lat := time.Since(planned)
	if err != nil {
		r.fail("transport", err, lat)
		return
	}
	if resp.StatusCode != http.StatusOK {
		r.fail(fmt.Sprintf("status %d", resp.StatusCode), fmt.Errorf("%s: %.200s", resp.Status, data), lat)
		return
	}
	// Every CheckEvery-th answer is decoded in full, and any answer that
	// QuickChecker does not pass.
	keyErrs := 0
	if qc, ok := r.opts.Protocol.(QuickChecker); !ok || r.opts.CheckEvery <= 1 || i%r.opts.CheckEvery == 0 || !qc.Quick(data, keys) {
		keyErrs, err = r.opts.Protocol.Check(data, keys)
		if err != nil {
			r.fail("system", err, lat)
			return
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Latencies = append(r.res.Latencies, lat)
	if i < len(r.res.ByRequest) {
		r.res.ByRequest[i] = lat
	}
	r.res.KeyErrors += keyErrs
	if keyErrs > 0 {
		r.res.KeyErrorRequests++
	}
	if lat > r.opts.Budget {
		r.res.OverBudget++
	}
	if keyErrs > 0 || lat > r.opts.Budget {
		r.res.Unverified++
	}
}

func (r *runner) fail(class string, err error, lat time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Errors[class]++
	r.res.Unverified++
	if r.res.FirstError == "" {
		r.res.FirstError = err.Error()
	}
	if lat > r.opts.Budget {
		r.res.OverBudget++
	}
}

// CheckSuccess sends one Gatekeeper request for keys to url and fails
// unless every key is answered with a value whose isSuccess is true (the
// shape of both Ratify's and vouch's answers): a benchmark measures only
// servers that really verify. It returns the size of the answer's body.
func CheckSuccess(ctx context.Context, client *http.Client, url string, keys []string) (int, error) {
	body, err := Gatekeeper{}.Body(keys)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %.500s", resp.Status, data)
	}
	var r providerResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return 0, fmt.Errorf("decode ProviderResponse: %w", err)
	}
	if r.Response.SystemError != "" {
		return 0, fmt.Errorf("systemError: %s", r.Response.SystemError)
	}
	if len(r.Response.Items) != len(keys) {
		return 0, fmt.Errorf("%d items for %d keys", len(r.Response.Items), len(keys))
	}
	for _, it := range r.Response.Items {
		var v struct {
			IsSuccess bool `json:"isSuccess"`
		}
		if it.Error != "" {
			return 0, fmt.Errorf("key %s: error %s", it.Key, it.Error)
		}
		if err := json.Unmarshal(it.Value, &v); err != nil || !v.IsSuccess {
			return 0, fmt.Errorf("key %s: not verified: %.1000s", it.Key, it.Value)
		}
	}
	return len(data), nil
}
