package duration_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/vouch-project/vouch/internal/duration"
)

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{`"2s"`, 2 * time.Second, ""},
		{`"1m30s"`, 90 * time.Second, ""},
		{`2`, 0, `expected a duration such as "2s"`},
		{`"soon"`, 0, "invalid duration"},
		{`"-1s"`, 0, `duration "-1s" is negative`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			var d duration.Duration
			err := json.Unmarshal([]byte(tc.in), &d)
			switch {
			case tc.err == "" && (err != nil || d.Duration != tc.want):
				t.Fatalf("got %v, %v; want %v", d.Duration, err, tc.want)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
	out, err := json.Marshal(duration.Duration{Duration: 1500 * time.Millisecond})
	if err != nil || string(out) != `"1.5s"` {
		t.Fatalf("marshal: %s, %v", out, err)
	}
}
