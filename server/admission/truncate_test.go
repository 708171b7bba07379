package admission

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// A denial message or warning cut to its bound stays valid UTF-8: reasons
// quote certificate subjects and package names, which may be any text.
func TestTruncateKeepsRunes(t *testing.T) {
	for _, s := range []string{strings.Repeat("é", maxWarning), strings.Repeat("a", maxWarning-2) + "日本"} {
		got := truncate(s, maxWarning)
		if len(got) > maxWarning || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
			t.Fatalf("%d bytes, valid UTF-8 %v: %q", len(got), utf8.ValidString(got), got[len(got)-10:])
		}
	}
	if got := truncate("short", maxWarning); got != "short" {
		t.Fatalf("short text changed: %q", got)
	}
}
