package schema

import (
	"cmp"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
)

// FuzzValidate feeds arbitrary layer bytes, as a registry would serve them,
// to the schema verifier: it must never panic, never pass what is not JSON,
// and refuse only by the depth limit.
func FuzzValidate(f *testing.F) {
	v, err := New("fuzz", Config{ArtifactTypes: []string{"application/json"}, Schema: "testdata/inventory-2020-12.json", SchemaName: "inventory-2020-12.json", MaxDepth: 32})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"name":"web","packages":[{"name":"openssl","version":"3.0.13"}],"coordinates":["x",1]}`))
	f.Add([]byte(`{"packages":[{"name":"openssl","version":"3.0"},{"name":"zlib","version":"1","license":"Zlib"}]}`))
	f.Add([]byte(`{"name":"a\"[[[","packages":[]}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
	f.Add([]byte(`{"name":1e999,"packages":[]}`))
	f.Add([]byte("\xff\xfe"))
	f.Add([]byte(`{"name":"a","packages":[{"name":"x","version":"` + strings.Repeat("\\n", 5000) + `"}],"\u001b[2J":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		layer := ocispec.Descriptor{MediaType: "application/json", Digest: digest.FromBytes(data), Size: int64(len(data))}
		res, err := v.validate(data, layer)
		if err != nil {
			if !errors.Is(err, vouch.ErrLimitExceeded) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		switch res.Outcome {
		case vouch.Passed:
			if !json.Valid(data) {
				t.Fatalf("passed a document that is not JSON: %q", data)
			}
		case vouch.Failed:
			// A bounded reason: a prefix, and at most MaxReasonErrors
			// clipped paths and messages.
			if res.Reason == "" || len(res.Reason) > 200+MaxReasonErrors*(2*MaxMessageBytes+16) {
				t.Fatalf("bad reason (%d bytes) %q", len(res.Reason), res.Reason)
			}
			if strings.IndexFunc(res.Reason, unicode.IsControl) >= 0 {
				t.Fatalf("control character in reason %q", res.Reason)
			}
		default:
			t.Fatalf("outcome %q", res.Outcome)
		}
	})
}

func TestComparePointers(t *testing.T) {
	sorted := []string{"", "/a", "/a/2", "/a/10", "/a/10/b", "/a/b", "/b"}
	for i := range sorted {
		for j := range sorted {
			if got, want := comparePointers(sorted[i], sorted[j]), cmp.Compare(i, j); got != want {
				t.Errorf("compare(%q, %q) = %d, want %d", sorted[i], sorted[j], got, want)
			}
		}
	}
}
