package intoto

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const stmt = `{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1",` +
	`"subject":[{"name":"img","digest":{"sha256":"ABCD"}}],"predicate":{"builder":{"id":"b"}}}`

func TestRead(t *testing.T) {
	env := `{"payloadType":"application/vnd.in-toto+json","payload":"` + base64.StdEncoding.EncodeToString([]byte(stmt)) + `","signatures":[]}`
	blobs := map[digest.Digest][]byte{}
	layer := func(mediaType, data string) ocispec.Descriptor {
		d := digest.FromString(data)
		blobs[d] = []byte(data)
		return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
	}
	m := ocispec.Manifest{Layers: []ocispec.Descriptor{
		layer(MediaTypeDSSE, env),
		layer("application/vnd.dev.sigstore.bundle.v0.3+json", `{"dsseEnvelope":`+env+`}`),
		layer(MediaTypeInToto, stmt),
		layer("text/plain", "ignored"),
		layer(MediaTypeInToto, `{"predicateType":""}`),
		layer("application/vnd.dev.sigstore.bundle.v0.3+json", `{"messageSignature":{}}`),
		layer(MediaTypeDSSE, `{"payloadType":"text/plain","payload":""}`),
	}}
	got, err := Read(context.Background(), m, func(_ context.Context, d ocispec.Descriptor) ([]byte, error) { return blobs[d.Digest], nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Fatalf("%d statements, want 6: %+v", len(got), got)
	}
	for i, s := range got[:3] {
		if s.Problem != "" || s.PredicateType != "https://slsa.dev/provenance/v1" || !s.Names("sha256:abcd") || s.Layer != i {
			t.Errorf("statement %d: %+v", i, s)
		}
	}
	for i, want := range []string{"has no predicateType", "message signature, not a statement", "not an in-toto statement"} {
		if s := got[3+i]; !strings.Contains(s.Problem, want) {
			t.Errorf("statement %d: problem %q, want %q", 3+i, s.Problem, want)
		}
	}
	big := ocispec.Manifest{Layers: []ocispec.Descriptor{{MediaType: MediaTypeInToto, Size: MaxLayerBytes + 1}}}
	got, err = Read(context.Background(), big, nil)
	if err != nil || len(got) != 1 || !strings.Contains(got[0].Problem, "over the") {
		t.Fatalf("oversized layer: %+v, %v", got, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("statement", []byte(stmt))
	f.Add("dsse", []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"`+base64.StdEncoding.EncodeToString([]byte(stmt))+`"}`))
	f.Add("bundle", []byte(`{"dsseEnvelope":{"payloadType":"application/vnd.in-toto+json","payload":"e30="}}`))
	f.Fuzz(func(t *testing.T, kind string, data []byte) {
		s, err := parse(kind, data)
		if err == nil && s.PredicateType == "" {
			t.Fatal("parsed a statement without a predicate type")
		}
	})
}
