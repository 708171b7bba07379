package code_test

import (
	"encoding/json"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/policy/code"
)

// FuzzInput: a report tree read from outside (a saved report, a
// verifier's details) becomes a policy's input document; building it never
// panics, and the document is always plain JSON.
func FuzzInput(f *testing.F) {
	f.Add([]byte(`{"relation":"subject","mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1,"referrers":[{"relation":"referrer","artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","outcome":"passed","results":[{"verifier":"c","outcome":"passed","reason":"ok","details":{"a":[1,2.5,{"b":null}],"n":1e308},"claims":[{"kind":"attestation","predicateType":"https://slsa.dev/provenance/v1","outcome":"passed"}]}]}]}`))
	f.Add([]byte(`{"manifests":[{"platform":{"os":"linux"},"annotations":{"k":"v"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var root vouch.Node
		if json.Unmarshal(data, &root) != nil {
			return
		}
		doc := code.Input(code.Subject{Ref: vouch.Reference{Registry: "r.io", Repository: "app", Tag: "v1"}, Namespace: "ns"}, &root)
		if _, err := json.Marshal(doc); err != nil {
			t.Fatalf("the input document is not plain JSON: %v", err)
		}
		if _, ok := doc["nodes"].([]any); !ok {
			t.Fatalf("no nodes list in %v", doc)
		}
	})
}
