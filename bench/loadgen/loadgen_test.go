package loadgen_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vouch-project/vouch/bench/loadgen"
)

// provider is a minimal Gatekeeper external data provider written for this
// test (the generator is what is under test): it answers every key with
// {"isSuccess": true}, or with a per-key error for keys starting with
// "bad", after sleeping for ?sleep= (a slow provider), or with a
// systemError for a key "system".
func provider(t *testing.T, sleep time.Duration) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		var req struct {
			Request struct {
				Keys []string `json:"keys"`
			} `json:"request"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		time.Sleep(sleep)
		var items []string
		sysErr := ""
		for _, k := range req.Request.Keys {
			switch {
			case k == "system":
				sysErr = "registry unreachable"
			case strings.HasPrefix(k, "bad"):
				items = append(items, fmt.Sprintf(`{"key":%q,"error":"not signed"}`, k))
			default:
				items = append(items, fmt.Sprintf(`{"key":%q,"value":{"isSuccess":true}}`, k))
			}
		}
		fmt.Fprintf(w, `{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderResponse","response":{"idempotent":true,"items":[%s],"systemError":%q}}`, strings.Join(items, ","), sysErr)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestOpenLoopRateAndCounts(t *testing.T) {
	srv, n := provider(t, 0)
	start := time.Now()
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		URL: srv.URL, Protocol: loadgen.Gatekeeper{}, Requests: 20, Rate: 200,
		Keys: func(i int) []string {
			if i == 0 {
				return []string{"good", "bad-1"}
			}
			return []string{"good"}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// 20 arrivals at 200/s span 95 ms.
	if took := time.Since(start); took < 95*time.Millisecond {
		t.Errorf("20 requests at 200/s took %v", took)
	}
	if res.Sent != 20 || len(res.Latencies) != 20 || n.Load() != 20 {
		t.Errorf("sent %d, answered %d, server saw %d", res.Sent, len(res.Latencies), n.Load())
	}
	if res.KeyErrors != 1 || res.ErrorCount() != 0 || res.OverBudget != 0 {
		t.Errorf("result: %s", res)
	}
	if p := res.Percentile(50); p <= 0 || p > res.Max() {
		t.Errorf("p50 %v, max %v", p, res.Max())
	}
}

func TestClosedLoopBudgetAndErrors(t *testing.T) {
	srv, _ := provider(t, 30*time.Millisecond)
	res, err := loadgen.Run(context.Background(), loadgen.Options{
		URL: srv.URL, Protocol: loadgen.Gatekeeper{}, Requests: 6, Workers: 3,
		Budget: 20 * time.Millisecond,
		Keys: func(i int) []string {
			if i%2 == 0 {
				return []string{"system"}
			}
			return []string{"good"}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors["system"] != 3 || len(res.Latencies) != 3 || res.OverBudget != 6 {
		t.Errorf("result: %s", res)
	}
	missing := httptest.NewServer(http.NotFoundHandler())
	defer missing.Close()
	res, err = loadgen.Run(context.Background(), loadgen.Options{
		URL: missing.URL, Protocol: loadgen.Gatekeeper{}, Requests: 1,
		Keys: func(int) []string { return []string{"good"} },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorCount() != 1 || res.Errors["status 404"] != 1 {
		t.Errorf("errors = %v", res.Errors)
	}
}

func TestCheckSuccess(t *testing.T) {
	srv, _ := provider(t, 0)
	if _, err := loadgen.CheckSuccess(context.Background(), http.DefaultClient, srv.URL, []string{"a", "b"}); err != nil {
		t.Errorf("all verified: %v", err)
	}
	if _, err := loadgen.CheckSuccess(context.Background(), http.DefaultClient, srv.URL, []string{"a", "bad"}); err == nil {
		t.Error("a key with an error passed")
	}
}

func TestAdmissionBody(t *testing.T) {
	body, err := loadgen.Admission{}.Body([]string{"r/a:1", "r/b:2"})
	if err != nil {
		t.Fatal(err)
	}
	var review struct {
		Kind    string `json:"kind"`
		Request struct {
			Operation string `json:"operation"`
			Object    struct {
				Spec struct {
					Containers []struct{ Image string } `json:"containers"`
				} `json:"spec"`
			} `json:"object"`
		} `json:"request"`
	}
	if err := json.Unmarshal(body, &review); err != nil {
		t.Fatal(err)
	}
	if review.Kind != "AdmissionReview" || review.Request.Operation != "CREATE" || len(review.Request.Object.Spec.Containers) != 2 || review.Request.Object.Spec.Containers[1].Image != "r/b:2" {
		t.Errorf("review = %+v", review)
	}
	for answer, want := range map[string]int{`{"response":{"allowed":true}}`: 0, `{"response":{"allowed":false}}`: 2} {
		got, err := loadgen.Admission{}.Check([]byte(answer), []string{"a", "b"})
		if err != nil || got != want {
			t.Errorf("Check(%s) = %d, %v; want %d", answer, got, err, want)
		}
	}
	if _, err := (loadgen.Admission{}).Check([]byte(`{}`), nil); err == nil {
		t.Error("an AdmissionReview without a response passed")
	}
}

func TestPercentile(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	for p, want := range map[float64]time.Duration{50: 5, 90: 9, 99: 10, 100: 10, 1: 1} {
		if got := loadgen.Percentile(ds, p); got != want {
			t.Errorf("p%g = %v, want %v", p, got, want)
		}
	}
}

// TestGatekeeperQuick checks that the quick check passes only answers that
// Check finds free of errors, and declines the others.
func TestGatekeeperQuick(t *testing.T) {
	keys := []string{"a.io/x@sha256:1", "[ns]b.io/y:v1"}
	for _, tc := range []struct {
		name, body string
		quick      bool
	}{
		{"all answered", `{"response":{"items":[{"key":"a.io/x@sha256:1","value":{"isSuccess":true}},{"key":"[ns]b.io/y:v1","value":{"isSuccess":true}}]}}` + "\n", true},
		{"a key missing", `{"response":{"items":[{"key":"a.io/x@sha256:1","value":{"isSuccess":true}}],"x":"[ns]b.io/y:v1"}}`, false},
		{"a key with an error", `{"response":{"items":[{"key":"a.io/x@sha256:1","value":{}},{"key":"[ns]b.io/y:v1","error":"no"}]}}`, false},
		{"a system error", `{"response":{"items":[{"key":"a.io/x@sha256:1"},{"key":"[ns]b.io/y:v1"}],"systemError":"down"}}`, false},
		{"cut short", `{"response":{"items":[{"key":"a.io/x@sha256:1"},{"key":"[ns]b.io/y:v1"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (loadgen.Gatekeeper{}).Quick([]byte(tc.body), keys); got != tc.quick {
				t.Fatalf("Quick = %v, want %v", got, tc.quick)
			}
			if tc.quick {
				if bad, err := (loadgen.Gatekeeper{}).Check([]byte(tc.body), keys); err != nil || bad != 0 {
					t.Fatalf("Quick passed an answer Check finds %d key errors in (%v)", bad, err)
				}
			}
		})
	}
}
