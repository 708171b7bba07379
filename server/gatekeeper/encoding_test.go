package gatekeeper

import (
	"testing"

	"github.com/vouch-project/vouch"
)

// TestEncodings: a cached verdict is encoded once per form (with and
// without the graph) and kept under its id; a verdict that is not cached
// (id 0) is encoded every time; the memo stays within its bounds.
func TestEncodings(t *testing.T) {
	var e encodings
	r := &vouch.Report{Verdict: vouch.Allowed, Reason: "first", Root: &vouch.Node{Relation: vouch.RelSubject, Digest: "sha256:00"}}
	encode := func(r *vouch.Report, id uint64, graph bool) string {
		t.Helper()
		b, err := e.verdict(r, id, graph)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := encodeVerdict(r, graph); id == 0 && string(b) != string(want) {
			t.Fatalf("id 0: %s, want %s", b, want)
		}
		return string(b)
	}
	first := encode(r, 1, false)
	graph := encode(r, 1, true)
	if first == graph {
		t.Fatal("the graph has no encoding of its own")
	}
	// The same id is the same verdict: what was encoded is answered, even
	// for a report that (against the promise) differs.
	changed := *r
	changed.Reason = "second"
	if got := encode(&changed, 1, false); got != first {
		t.Fatalf("id 1 encoded again: %s", got)
	}
	if got := encode(&changed, 1, true); got != graph {
		t.Fatalf("id 1 with the graph encoded again: %s", got)
	}
	if got := encode(&changed, 2, false); got == first {
		t.Fatal("a new id got the old encoding")
	}
	if encode(&changed, 0, false) == first || encode(r, 0, false) != first {
		t.Fatal("id 0 was not encoded afresh")
	}
	for id := range uint64(3 * maxEncodings) {
		encode(r, id+3, false)
		if len(e.m) > maxEncodings || e.bytes > maxEncodingBytes {
			t.Fatalf("%d encodings, %d bytes kept", len(e.m), e.bytes)
		}
	}
}
