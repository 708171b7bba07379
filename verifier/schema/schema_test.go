package schema_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/schema"
)

const (
	inventoryType = "application/vnd.example.inventory+json"
	reportType    = "application/vnd.example.report+json"
)

// inDir resolves the relative paths of c against dir, as vouch's config
// package does for a config file in dir.
func inDir(dir string, c schema.Config) schema.Config {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	if c.Schema != "" {
		c.SchemaName = c.Schema
	}
	c.Schema, c.SchemaFile = abs(c.Schema), abs(c.SchemaFile)
	c.Resources = slices.Clone(c.Resources)
	for i := range c.Resources {
		c.Resources[i].File = abs(c.Resources[i].File)
	}
	return c
}

// newVerifier builds a verifier from c with paths relative to testdata.
func newVerifier(t *testing.T, name string, c schema.Config) *schema.Verifier {
	t.Helper()
	v, err := schema.New(name, inDir("testdata", c))
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	return v
}

// attach pushes an image and, as its referrer, a manifest of artifactType
// with one layer holding doc; it returns the image's reference.
func attach(t *testing.T, reg *testbed.Registry, repo, artifactType, layerType string, doc []byte) vouch.Reference {
	t.Helper()
	p := testbed.NewPusher(t, reg.Host, repo)
	img := p.Image("v1", repo)
	p.Attach(img, artifactType, layerType, doc)
	ref, err := vouch.ParseReference(reg.Host + "/" + repo + "@" + img.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// verify runs an Executor with the registry store over ref and returns the
// one result that verifier name gave on ref's referrers.
func verify(t *testing.T, store vouch.Store, v vouch.Verifier, ref vouch.Reference) vouch.Result {
	t.Helper()
	e := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v}, Policy: policy.Default([]string{v.Name()})}
	report, err := e.Verify(context.Background(), ref)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	var got []vouch.Result
	report.Root.Walk(func(n *vouch.Node, _ int) {
		for _, r := range n.Results {
			if r.Verifier == v.Name() {
				got = append(got, r)
			}
		}
	})
	if len(got) != 1 {
		t.Fatalf("got %d results from %s, want 1: %+v", len(got), v.Name(), got)
	}
	return got[0]
}

func newStore(t *testing.T, limits vouch.Limits) vouch.Store {
	t.Helper()
	s, err := registry.New(registry.Options{PlainHTTP: true, Limits: limits, DockerConfig: writeDockerConfig(t)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// writeDockerConfig keeps the tests off the user's own credentials.
func writeDockerConfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// nested returns a JSON document whose value nests depth arrays deep.
func nested(depth int) []byte {
	return []byte(`{"name":"deep","packages":[],"x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`)
}

func TestVerify(t *testing.T) {
	verifiers := map[string]*schema.Verifier{
		"2020-12": newVerifier(t, "inventory-2020-12", schema.Config{ArtifactTypes: []string{inventoryType}, Schema: "inventory-2020-12.json"}),
		"draft7":  newVerifier(t, "inventory-draft7", schema.Config{ArtifactTypes: []string{inventoryType}, Schema: "inventory-draft7.json"}),
		"pinned": newVerifier(t, "report", schema.Config{
			ArtifactTypes: []string{reportType},
			SchemaURL:     "https://schemas.example.com/report.json",
			SchemaFile:    "report.json",
			Resources:     []schema.Resource{{URL: "https://schemas.example.com/common/package.json", File: "common/package.json"}},
		}),
		"relative": newVerifier(t, "relative", schema.Config{ArtifactTypes: []string{reportType}, Schema: "relative-ref.json"}),
	}
	valid := `{"name":"web","packages":[{"name":"openssl","version":"3.0.13"}],"coordinates":["x",1]}`
	// Four errors: the reason lists three and counts the rest.
	invalid := `{"packages":[{"name":"openssl","version":"3.0"},{"name":"zlib","version":"1.3.1","license":"Zlib"}],"coordinates":["x",1,"extra"]}`
	cases := []struct {
		name, verifier, artifactType, doc string
		want                              vouch.Outcome
		reason                            []string
	}{
		{"2020-12 valid", "2020-12", inventoryType, valid, vouch.Passed, []string{"valid against schema inventory-2020-12.json"}},
		{"2020-12 invalid", "2020-12", inventoryType, invalid, vouch.Failed, []string{
			"not valid against schema inventory-2020-12.json: ",
			`at /: missing property 'name'`,
			`at /coordinates/2: false schema`,
			`at /packages/0/version: '3.0' does not match pattern`,
			"(and 1 more)",
		}},
		{"2020-12 prefixItems", "2020-12", inventoryType, `{"name":"a","packages":[],"coordinates":["x",1,2]}`, vouch.Failed, []string{"at /coordinates"}},
		{"draft 7 valid", "draft7", inventoryType, valid, vouch.Passed, []string{"valid against schema inventory-draft7.json"}},
		{"draft 7 invalid", "draft7", inventoryType, invalid, vouch.Failed, []string{
			"not valid against schema inventory-draft7.json: ",
			`at /packages/0/version: '3.0' does not match pattern`,
			"(and 1 more)",
		}},
		// Draft 7 has no prefixItems: its tuple form is items + additionalItems.
		{"draft 7 additionalItems", "draft7", inventoryType, `{"name":"a","packages":[],"coordinates":["x",1,2]}`, vouch.Failed, []string{"at /coordinates"}},
		{"pinned URL valid", "pinned", reportType, valid, vouch.Passed, []string{"valid against schema https://schemas.example.com/report.json"}},
		{"pinned URL $ref invalid", "pinned", reportType, `{"name":"r","packages":[{"name":"zlib"}]}`, vouch.Failed, []string{`at /packages/0: missing property 'version'`}},
		{"relative file $ref valid", "relative", reportType, valid, vouch.Passed, nil},
		{"relative file $ref invalid", "relative", reportType, `{"name":"r","packages":[{"name":"zlib","version":"x"}]}`, vouch.Failed, []string{"at /packages/0/version"}},
		{"not JSON", "2020-12", inventoryType, `{"name": "web",`, vouch.Failed, []string{"is not JSON"}},
		{"trailing garbage", "2020-12", inventoryType, valid + `{}`, vouch.Failed, []string{"is not JSON"}},
		{"deep nesting", "2020-12", inventoryType, string(nested(schema.DefaultMaxDepth + 10)), vouch.Errored, []string{"exceeds the limit maxDepth=128"}},
		{"nesting at the limit", "2020-12", inventoryType, string(nested(schema.DefaultMaxDepth - 1)), vouch.Passed, nil},
	}
	for _, reg := range testbed.Both(t) {
		store := newStore(t, vouch.Limits{})
		t.Run(reg.Name, func(t *testing.T) {
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					ref := attach(t, reg, fmt.Sprintf("schema/case%d", i), c.artifactType, c.artifactType, []byte(c.doc))
					got := verify(t, store, verifiers[c.verifier], ref)
					t.Logf("%s: %s", got.Outcome, got.Reason)
					if got.Outcome != c.want {
						t.Fatalf("outcome %s (%s), want %s", got.Outcome, got.Reason, c.want)
					}
					for _, s := range c.reason {
						if !strings.Contains(got.Reason, s) {
							t.Errorf("reason %q does not contain %q", got.Reason, s)
						}
					}
				})
			}
		})
	}
}

// The document's size is bounded by the store's max-blob-bytes: the schema
// verifier reads blobs only through the store.
func TestVerifyOversize(t *testing.T) {
	v := newVerifier(t, "inventory", schema.Config{ArtifactTypes: []string{inventoryType}, Schema: "inventory-2020-12.json"})
	store := newStore(t, vouch.Limits{MaxBlobBytes: 4096})
	big := `{"name":"big","packages":[` + strings.Repeat(`{"name":"p","version":"1.0.0"},`, 200) + `{"name":"p","version":"1.0.0"}]}`
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			ref := attach(t, reg, "schema/oversize", inventoryType, inventoryType, []byte(big))
			got := verify(t, store, v, ref)
			t.Logf("%s: %s", got.Outcome, got.Reason)
			if got.Outcome != vouch.Errored || !strings.Contains(got.Reason, "max-blob-bytes=4096") {
				t.Fatalf("got %s: %s; want an error naming max-blob-bytes", got.Outcome, got.Reason)
			}
		})
	}
}

// Which layer is validated: the only one, the one whose media type is the
// artifact type, or the one of layerMediaType.
func TestLayerSelection(t *testing.T) {
	reg := testbed.GGCR(t, nil)
	store := newStore(t, vouch.Limits{})
	p := testbed.NewPusher(t, reg.Host, "schema/layers")
	img := p.Image("v1", "layers")
	doc := p.Blob(inventoryType, []byte(`{"name":"web","packages":[]}`))
	note := p.Blob("text/plain", []byte("not JSON at all"))
	other := p.Blob("application/vnd.example.other+json", []byte(`{"name":"web","packages":[]}`))

	attachLayers := func(layers ...ocispec.Descriptor) vouch.Reference {
		m := p.ArtifactManifest(img, inventoryType, "text/plain", []byte("placeholder"))
		m.Layers = layers
		p.Manifest(ocispec.MediaTypeImageManifest, m, "")
		ref, err := vouch.ParseReference(reg.Host + "/schema/layers@" + img.Digest.String())
		if err != nil {
			t.Fatal(err)
		}
		return ref
	}
	byType := newVerifier(t, "default", schema.Config{ArtifactTypes: []string{inventoryType}, Schema: "inventory-2020-12.json"})
	byLayer := newVerifier(t, "by-layer", schema.Config{ArtifactTypes: []string{inventoryType}, Schema: "inventory-2020-12.json", LayerMediaType: "application/vnd.example.other+json"})
	cases := []struct {
		name   string
		v      *schema.Verifier
		layers []ocispec.Descriptor
		want   vouch.Outcome
		reason string
	}{
		{"the layer of the artifact type", byType, []ocispec.Descriptor{note, doc}, vouch.Passed, "valid"},
		{"no layer of the artifact type", byType, []ocispec.Descriptor{note, other}, vouch.Failed, "set layerMediaType"},
		{"two layers of the artifact type", byType, []ocispec.Descriptor{doc, doc}, vouch.Failed, "cannot tell which"},
		{"no layers", byType, []ocispec.Descriptor{}, vouch.Failed, "no layer to validate"},
		{"layerMediaType", byLayer, []ocispec.Descriptor{doc, note, other}, vouch.Passed, "valid"},
		{"layerMediaType missing", byLayer, []ocispec.Descriptor{doc}, vouch.Failed, "no layer of media type application/vnd.example.other+json"},
		{"only layer, another type", byType, []ocispec.Descriptor{note}, vouch.Failed, "is not JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Each case is a fresh subject so that it has one referrer.
			img = p.Image("v1", c.name)
			got := verify(t, store, c.v, attachLayers(c.layers...))
			if got.Outcome != c.want || !strings.Contains(got.Reason, c.reason) {
				t.Fatalf("got %s: %s; want %s with %q", got.Outcome, got.Reason, c.want, c.reason)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	types := []string{inventoryType}
	cases := []struct {
		name string
		c    schema.Config
		want string
	}{
		{"no artifact types", schema.Config{Schema: "inventory-2020-12.json"}, "schema.artifactTypes: required"},
		{"no schema", schema.Config{ArtifactTypes: types}, "schema.schema: required"},
		{"both schema and URL", schema.Config{ArtifactTypes: types, Schema: "report.json", SchemaURL: "https://schemas.example.com/report.json"}, "schema.schemaURL: set schema or schemaURL, not both"},
		{"schema URL without a pinned file", schema.Config{ArtifactTypes: types, SchemaURL: "https://schemas.example.com/report.json"}, "schema.schemaFile: required with schemaURL"},
		{"pinned schema whose $ref is not pinned", schema.Config{ArtifactTypes: types, SchemaURL: "https://schemas.example.com/report.json", SchemaFile: "report.json"}, "vouch does not fetch schemas from the network"},
		{"file schema whose $ref is a URL not pinned", schema.Config{ArtifactTypes: types, Schema: "unpinned-ref.json"}, "pin https://schemas.example.com/common/package.json to a local file"},
		{"missing file", schema.Config{ArtifactTypes: types, Schema: "nope.json"}, "nope.json"},
		{"schema not JSON", schema.Config{ArtifactTypes: types, Schema: "../schema.go"}, "is not JSON"},
		{"relative URL", schema.Config{ArtifactTypes: types, SchemaURL: "report.json", SchemaFile: "report.json"}, "is not an absolute URL"},
		{"resource without file", schema.Config{ArtifactTypes: types, Schema: "report.json", Resources: []schema.Resource{{URL: "https://a.example/x.json"}}}, "schema.resources[0].file: required"},
		{"unknown draft", schema.Config{ArtifactTypes: types, Schema: "report.json", DefaultDraft: "8"}, "schema.defaultDraft"},
		{"negative depth", schema.Config{ArtifactTypes: types, Schema: "report.json", MaxDepth: -1}, "schema.maxDepth"},
		{"schema nested too deep", schema.Config{ArtifactTypes: types, Schema: "inventory-2020-12.json", MaxDepth: 3}, "nested deeper than 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := schema.New("s", inDir("testdata", c.c))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: %v; want an error containing %q", err, c.want)
			}
		})
	}
}

// With allowNetworkFetch, schemas that nothing pins are downloaded once, in
// New, bounded in size.
func TestNetworkFetch(t *testing.T) {
	common, err := os.ReadFile("testdata/common/package.json")
	if err != nil {
		t.Fatal(err)
	}
	var requests int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		switch r.URL.Path {
		case "/common/package.json":
			w.Write(common)
		case "/huge.json":
			w.Write([]byte(`{"description":"`))
			chunk := []byte(strings.Repeat("x", 1<<16))
			for i := 0; i < (schema.MaxSchemaBytes>>16)+2; i++ {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			w.Write([]byte(`"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	write := func(name, ref string) {
		s := `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"array","items":{"$ref":"` + ref + `"}}`
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ok.json", srv.URL+"/common/package.json")
	write("huge.json", srv.URL+"/huge.json")
	write("missing.json", srv.URL+"/missing.json")

	if _, err := schema.New("s", inDir(dir, schema.Config{ArtifactTypes: []string{inventoryType}, Schema: "ok.json"})); err == nil {
		t.Fatal("an unpinned URL was accepted without allowNetworkFetch")
	}
	if requests != 0 {
		t.Fatalf("%d requests reached the server without allowNetworkFetch", requests)
	}
	v, err := schema.New("s", inDir(dir, schema.Config{ArtifactTypes: []string{inventoryType}, Schema: "ok.json", AllowNetworkFetch: true}))
	if err != nil {
		t.Fatalf("New with allowNetworkFetch: %v", err)
	}
	if requests != 1 || v == nil {
		t.Fatalf("%d requests, want 1", requests)
	}
	_, err = schema.New("s", inDir(dir, schema.Config{ArtifactTypes: []string{inventoryType}, Schema: "huge.json", AllowNetworkFetch: true}))
	if err == nil || !strings.Contains(err.Error(), "MaxSchemaBytes") {
		t.Fatalf("oversize schema: %v", err)
	}
	_, err = schema.New("s", inDir(dir, schema.Config{ArtifactTypes: []string{inventoryType}, Schema: "missing.json", AllowNetworkFetch: true}))
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("missing schema: %v", err)
	}
	// A schema URL with no pinned file is fetched itself.
	_, err = schema.New("s", inDir(dir, schema.Config{ArtifactTypes: []string{inventoryType}, SchemaURL: srv.URL + "/common/package.json", AllowNetworkFetch: true}))
	if err != nil {
		t.Fatalf("schemaURL fetched: %v", err)
	}
}

// CycloneDX's own schema (draft 7, bom-1.6 referring to spdx.schema.json and
// jsf-0.82.schema.json by relative URL), as cyclonedx-go ships it, pinned to
// those files; its 1.6 test documents, attached to one image, all pass and a
// broken one fails.
func TestCycloneDXSchema(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
	if err != nil {
		t.Fatalf("locate cyclonedx-go: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	const cdxType = "application/vnd.cyclonedx+json"
	v := newVerifier(t, "cyclonedx-1.6", schema.Config{
		ArtifactTypes: []string{cdxType},
		SchemaURL:     "http://cyclonedx.org/schema/bom-1.6.schema.json",
		SchemaFile:    filepath.Join(mod, "schema", "bom-1.6.schema.json"),
		Resources: []schema.Resource{
			{URL: "http://cyclonedx.org/schema/spdx.schema.json", File: filepath.Join(mod, "schema", "spdx.schema.json")},
			{URL: "http://cyclonedx.org/schema/jsf-0.82.schema.json", File: filepath.Join(mod, "schema", "jsf-0.82.schemax.json")},
		},
	})
	docs, err := filepath.Glob(filepath.Join(mod, "testdata", "valid-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	reg := testbed.GGCR(t, nil)
	p := testbed.NewPusher(t, reg.Host, "schema/cyclonedx")
	img := p.Image("v1", "cyclonedx")
	want := map[string]vouch.Outcome{}
	for _, path := range docs {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), `"specVersion": "1.6"`) {
			continue
		}
		want[p.Attach(img, cdxType, cdxType, data).Digest.String()] = vouch.Passed
	}
	if len(want) < 30 {
		t.Fatalf("only %d CycloneDX 1.6 documents found in %s", len(want), mod)
	}
	broken := `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library","name":"x","licenses":[{"license":{}}]}]}`
	want[p.Attach(img, cdxType, cdxType, []byte(broken)).Digest.String()] = vouch.Failed

	e := &vouch.Executor{Store: newStore(t, vouch.Limits{}), Verifiers: []vouch.Verifier{v}, Policy: policy.Default([]string{v.Name()})}
	ref, err := vouch.ParseReference(reg.Host + "/schema/cyclonedx@" + img.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	report, err := e.Verify(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Root.Referrers) != len(want) {
		t.Fatalf("%d referrers, want %d", len(report.Root.Referrers), len(want))
	}
	for _, n := range report.Root.Referrers {
		if len(n.Results) != 1 || n.Results[0].Outcome != want[n.Digest.String()] {
			t.Errorf("%s: %+v, want %s", n.Digest, n.Results, want[n.Digest.String()])
		} else if n.Results[0].Outcome == vouch.Failed {
			t.Logf("broken document: %s", n.Results[0].Reason)
		}
	}
}
