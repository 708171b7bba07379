package maxage

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"720h": 720 * time.Hour, "30d": 720 * time.Hour, "7d12h": 180 * time.Hour, "1h30m": 90 * time.Minute, " 2d ": 48 * time.Hour,
	} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "30", "-1d", "1w", "99999999999d", "1d-48h", "x1d"} {
		if got, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", bad, got)
		}
	}
}

func TestFormat(t *testing.T) {
	for d, want := range map[time.Duration]string{72 * time.Hour: "3d", 50 * time.Hour: "2d2h", 90 * time.Minute: "1h30m", time.Hour: "1h", 2 * time.Minute: "2m"} {
		if got := Format(d); got != want {
			t.Errorf("Format(%v) = %q, want %q", d, got, want)
		}
	}
}
