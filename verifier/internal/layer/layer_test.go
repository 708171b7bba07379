package layer

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestPick(t *testing.T) {
	desc := func(mediaType, content string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromString(content), Size: int64(len(content))}
	}
	var (
		doc   = desc("application/json", "doc")
		doc2  = desc("application/json", "doc2")
		note  = desc("text/plain", "note")
		other = desc("application/octet-stream", "other")
	)
	isJSON := func(mediaType string) bool { return strings.HasSuffix(mediaType, "json") }
	cases := []struct {
		name        string
		layers      []ocispec.Descriptor
		fallback    Fallback
		want        ocispec.Descriptor
		wantMatched int
		wantOK      bool
	}{
		{"no layer", nil, OnlyLayer, ocispec.Descriptor{}, 0, false},
		{"no layer, strict", []ocispec.Descriptor{}, Strict, ocispec.Descriptor{}, 0, false},
		{"the only layer matches", []ocispec.Descriptor{doc}, OnlyLayer, doc, 1, true},
		{"the only layer matches, strict", []ocispec.Descriptor{doc}, Strict, doc, 1, true},
		{"the only layer does not match", []ocispec.Descriptor{note}, OnlyLayer, note, 0, true},
		{"the only layer does not match, strict", []ocispec.Descriptor{note}, Strict, ocispec.Descriptor{}, 0, false},
		{"one of several matches", []ocispec.Descriptor{note, doc, other}, OnlyLayer, doc, 1, true},
		{"one of several matches, strict", []ocispec.Descriptor{note, doc, other}, Strict, doc, 1, true},
		{"none of several matches", []ocispec.Descriptor{note, other}, OnlyLayer, ocispec.Descriptor{}, 0, false},
		{"none of several matches, strict", []ocispec.Descriptor{note, other}, Strict, ocispec.Descriptor{}, 0, false},
		{"two match", []ocispec.Descriptor{doc, note, doc2}, OnlyLayer, ocispec.Descriptor{}, 2, false},
		{"the same layer twice", []ocispec.Descriptor{doc, doc}, Strict, ocispec.Descriptor{}, 2, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, matched, ok := Pick(c.layers, isJSON, c.fallback)
			if got.Digest != c.want.Digest || got.MediaType != c.want.MediaType || matched != c.wantMatched || ok != c.wantOK {
				t.Fatalf("Pick = %s %s, %d, %v; want %s %s, %d, %v", got.MediaType, got.Digest, matched, ok, c.want.MediaType, c.want.Digest, c.wantMatched, c.wantOK)
			}
		})
	}
}
