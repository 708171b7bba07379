package render_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/render"
)

func TestJSONRoundTrip(t *testing.T) {
	reports := sampleReports()
	reports.Subjects[1].Reason = "sbom: license <GPL-3.0> & friends"
	var first bytes.Buffer
	if err := render.JSON(&first, reports); err != nil {
		t.Fatalf("JSON: %v", err)
	}
	var back vouch.Reports
	dec := json.NewDecoder(bytes.NewReader(first.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(&back, reports) {
		t.Errorf("round trip changed the reports:\n%s", first.String())
	}
	var second bytes.Buffer
	if err := render.JSON(&second, &back); err != nil {
		t.Fatal(err)
	}
	if first.String() != second.String() {
		t.Error("encoding the decoded reports gives different bytes")
	}

	out := first.String()
	for _, want := range []string{
		"{\n  \"version\": \"vouch.report/v1\",\n  \"verdict\": \"denied\",\n  \"subjects\": [\n",
		`"reason": "sbom: license <GPL-3.0> & friends"`, // no HTML escaping
		`"graph": {`,
		`"artifactType": "application/vnd.example\"quoted\\back"`,
		`"source": "cosign-tag"`,
		`"manifests": [`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("JSON lacks %q", want)
		}
	}
}

func TestJSONDetailsStable(t *testing.T) {
	root := signedImage()
	root.Referrers[0].Results = []vouch.Result{{
		Verifier: "notation", Outcome: vouch.Passed, Reason: "ok",
		Details: map[string]any{"signer": "CN=release", "algorithm": "ECDSA-P256", "chain": []string{"a", "b"}},
	}}
	reports := vouch.Summarize([]*vouch.Report{{Reference: "r/a:1", Verdict: vouch.Allowed, Root: root}})
	var a, b bytes.Buffer
	if err := render.JSON(&a, reports); err != nil {
		t.Fatal(err)
	}
	if err := render.JSON(&b, reports); err != nil {
		t.Fatal(err)
	}
	if a.String() != b.String() {
		t.Error("two encodings differ")
	}
	out := a.String()
	if i, j := strings.Index(out, `"algorithm"`), strings.Index(out, `"signer"`); i < 0 || j < i {
		t.Errorf("details keys are not sorted:\n%s", out)
	}
}

func TestGraphJSONRoundTrip(t *testing.T) {
	for name, root := range map[string]*vouch.Node{"image": signedImage(), "index": multiArch(), "wide": wide(70)} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := render.GraphJSON(&b, root); err != nil {
				t.Fatalf("GraphJSON: %v", err)
			}
			if !strings.HasPrefix(b.String(), "{\n  \"relation\": \"subject\",\n") {
				t.Errorf("not an indented node object:\n%.200s", b.String())
			}
			var back vouch.Node
			if err := json.Unmarshal(b.Bytes(), &back); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(&back, root) {
				t.Errorf("round trip changed the graph")
			}
			if back.Count() != root.Count() {
				t.Errorf("count = %d, want %d", back.Count(), root.Count())
			}
		})
	}
}
