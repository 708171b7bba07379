package untrusted

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                  "plain",
		"  line\nbrk\t ":         "line brk",
		"bidi\u202eevil":         "bidi evil",
		"x \xff y":               "x \ufffd y",
		"héllo wörld, long text": "héllo w…",
	} {
		if got := Text(in, 9); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestJSONLen(t *testing.T) {
	for _, s := range []string{"", "abc", `a"b\\c`, "<&>", "\n\t\x01", "é\u2028x", "\xff", strings.Repeat("<", 300)} {
		data, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if n := JSONLen(s); n < len(data) || n > 6*len(s)+2 {
			t.Errorf("JSONLen(%q) = %d; encoding/json writes %d bytes", s, n, len(data))
		}
	}
}

func TestCheckJSONDepth(t *testing.T) {
	if err := CheckJSONDepth([]byte(`{"a":[[1]],"s":"[[[[[["}`), 3); err != nil {
		t.Fatal(err)
	}
	if err := CheckJSONDepth([]byte(strings.Repeat("[", 5)), 4); err == nil || !strings.Contains(err.Error(), "deeper than 4") {
		t.Fatalf("err = %v", err)
	}
}

// FuzzCheckJSONDepth checks the byte scanner against encoding/json: a document
// the scanner lets through never nests deeper than allowed.
func FuzzCheckJSONDepth(f *testing.F) {
	f.Add([]byte(`{"a":[1,{"b":"]]]"}]}`), 3)
	f.Add([]byte(`"\\\"["`), 0)
	f.Fuzz(func(t *testing.T, data []byte, limit int) {
		if limit < 0 || limit > 64 || !json.Valid(data) {
			return
		}
		if CheckJSONDepth(data, limit) != nil {
			return
		}
		if d := depthOf(data); d > limit {
			t.Fatalf("scanner passed depth %d over %d: %q", d, limit, data)
		}
	})
}

// depthOf measures nesting with encoding/json's tokenizer.
func depthOf(data []byte) int {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			deepest = max(deepest, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}
