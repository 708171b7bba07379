package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	vouch "github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
)

// throttle, once on, answers the first n manifest requests with status and the
// header that retryAfter returns, then lets the real registry answer: a
// registry under load or rate limiting, in front of the real ggcr handler.
type throttle struct {
	status     int
	n          int64
	retryAfter func() string
	on         atomic.Bool
	served     atomic.Int64
}

func (th *throttle) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if th.on.Load() && strings.Contains(r.URL.Path, "/manifests/") && th.served.Add(1) <= th.n {
			if v := th.retryAfter(); v != "" {
				w.Header().Set("Retry-After", v)
			}
			w.WriteHeader(th.status)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func TestRetry(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		failures   int64
		retryAfter func() string
		maxRetries int
		timeout    time.Duration
		minWait    time.Duration
		maxWait    time.Duration
		wantErr    string // empty: success
		wantTries  int64
	}{
		{
			name: "429 with Retry-After seconds", status: http.StatusTooManyRequests, failures: 1,
			retryAfter: func() string { return "1" },
			minWait:    time.Second, maxWait: 3 * time.Second, wantTries: 2,
		},
		{
			name: "503 with Retry-After date", status: http.StatusServiceUnavailable, failures: 1,
			// Second precision: a date 2s ahead is 1–2s away.
			retryAfter: func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) },
			minWait:    time.Second, maxWait: 3 * time.Second, wantTries: 2,
		},
		{
			name: "502 with backoff", status: http.StatusBadGateway, failures: 2,
			retryAfter: func() string { return "" },
			maxWait:    2 * time.Second, wantTries: 3,
		},
		{
			name: "deadline shorter than Retry-After", status: http.StatusTooManyRequests, failures: 100,
			retryAfter: func() string { return "5" }, timeout: time.Second,
			maxWait: 500 * time.Millisecond, wantErr: "429", wantTries: 1,
		},
		{
			name: "retries exhausted", status: http.StatusServiceUnavailable, failures: 100,
			retryAfter: func() string { return "0" }, maxRetries: 2,
			maxWait: time.Second, wantErr: "503", wantTries: 3,
		},
		{
			name: "retries disabled", status: http.StatusServiceUnavailable, failures: 100,
			retryAfter: func() string { return "" }, maxRetries: -1,
			maxWait: 500 * time.Millisecond, wantErr: "503", wantTries: 1,
		},
		{
			name: "500 is not retried", status: http.StatusInternalServerError, failures: 100,
			retryAfter: func() string { return "" },
			maxWait:    500 * time.Millisecond, wantErr: "500", wantTries: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := &throttle{status: tc.status, n: tc.failures, retryAfter: tc.retryAfter}
			reg := testbed.GGCR(t, th.wrap)
			testbed.NewPusher(t, reg.Host, "busy").Image("v1", "layer")
			th.on.Store(true)
			s := newStore(t, registry.Options{PlainHTTP: true, MaxRetries: tc.maxRetries})
			repo := open(t, s, reg.Host, "busy")
			ctx := t.Context()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			start := time.Now()
			_, err := repo.Resolve(ctx, "v1")
			elapsed := time.Since(start)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Resolve: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Resolve err = %v, want one mentioning %s", err, tc.wantErr)
			}
			if elapsed < tc.minWait || elapsed > tc.maxWait {
				t.Errorf("took %v, want %v to %v", elapsed, tc.minWait, tc.maxWait)
			}
			if n := th.served.Load(); n != tc.wantTries {
				t.Errorf("%d attempts, want %d", n, tc.wantTries)
			}
		})
	}
}

// TestUnreachable reads from a port where nothing listens: the error names
// the host and comes at once, without a retry storm.
func TestUnreachable(t *testing.T) {
	host := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
	s := newStore(t, registry.Options{PlainHTTP: true})
	repo := open(t, s, host, "gone")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := repo.Resolve(ctx, "v1")
	if err == nil || !strings.Contains(err.Error(), host) || !strings.Contains(err.Error(), "could not be reached") {
		t.Fatalf("err = %v, want one saying %s could not be reached", err, host)
	}
	if errors.Is(err, vouch.ErrNotFound) {
		t.Errorf("an unreachable registry must not look like a missing artifact")
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("took %v, want an immediate failure", elapsed)
	}
}
