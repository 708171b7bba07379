// Package maxage reads and writes the maximum ages of SBOMs and reports in
// vouch's config: a Go duration ("720h", "1h30m") or whole days, optionally
// followed by a Go duration ("30d", "7d12h").
package maxage

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Parse reads a maximum age; it must be positive.
func Parse(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i > 0 && isDigits(s[:i]) {
		days, err := strconv.Atoi(s[:i])
		if err != nil || days > 100*365 {
			return 0, fmt.Errorf("%q: too many days", s)
		}
		d, rest = time.Duration(days)*24*time.Hour, s[i+1:]
	}
	if rest != "" {
		v, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (write \"720h\", \"30d\" or \"7d12h\")", s)
		}
		d += v
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q: must be positive", s)
	}
	return d, nil
}

// Format writes d the way a maximum age is usually written: days and hours
// when over two days, else a Go duration rounded to the second.
func Format(d time.Duration) string {
	if d >= 48*time.Hour {
		days := d / (24 * time.Hour)
		hours := (d % (24 * time.Hour)) / time.Hour
		if hours == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%dh", days, hours)
	}
	s := d.Round(time.Second).String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
