package registry

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		status int
		value  string
		want   time.Duration
		wantOK bool
	}{
		{"seconds on 429", 429, "3", 3 * time.Second, true},
		{"seconds on 503", 503, "1", time.Second, true},
		{"zero", 429, "0", 0, true},
		{"date", 503, now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second, true},
		{"date in the past", 429, now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"huge is capped at an hour", 429, "99999999999", time.Hour, true},
		{"negative", 429, "-1", 0, false},
		{"garbage", 429, "soon", 0, false},
		{"absent", 429, "", 0, false},
		{"ignored on 502", 502, "3", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
			if tc.value != "" {
				resp.Header.Set("Retry-After", tc.value)
			}
			got, ok := retryAfter(resp, now)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("retryAfter(%d, %q) = %v, %v; want %v, %v", tc.status, tc.value, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
