package vulnreport

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var daysPrefix = regexp.MustCompile(`^([0-9]+)d(.*)$`)

// ParseAge reads a maximum age: a Go duration ("168h", "1h30m") or whole
// days, optionally followed by a Go duration ("7d", "1d12h"). It must be
// positive.
func ParseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	rest := s
	if m := daysPrefix.FindStringSubmatch(s); m != nil {
		days, err := strconv.Atoi(m[1])
		if err != nil || days > 100*365 {
			return 0, fmt.Errorf("%q: too many days", s)
		}
		d = time.Duration(days) * 24 * time.Hour
		rest = m[2]
	}
	if rest != "" {
		v, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (write \"168h\", \"7d\" or \"1d12h\")", s)
		}
		d += v
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q: must be positive", s)
	}
	return d, nil
}

// formatAge writes d the way maxAge is usually written: days and hours
// when over two days, else a Go duration rounded to the second.
func formatAge(d time.Duration) string {
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
