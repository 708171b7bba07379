package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
)

// vouchRun runs the CLI in process and returns exit code, stdout, stderr.
func vouchRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestQuickStartLayout(t *testing.T) {
	const layout = "oci-layout:../../examples/layout:"
	// The README's first command.
	code, out, stderr := vouchRun(t, "verify", "--config", "../../examples/config/quickstart.yaml", layout+"demo", layout+"unsigned")
	if code != exitDenied {
		t.Fatalf("exit %d, want %d (one allowed, one denied)\n%s%s", code, exitDenied, out, stderr)
	}
	if !strings.Contains(out, "ALLOWED  oci-layout:../../examples/layout:demo@") || !strings.Contains(out, "DENIED  oci-layout:../../examples/layout:unsigned@") ||
		!strings.Contains(out, "1 allowed, 1 denied") {
		t.Fatalf("output:\n%s", out)
	}
	code, out, _ = vouchRun(t, "verify", "-o", "json", "--config", "../../examples/config/quickstart.yaml", layout+"demo")
	var doc vouch.Reports
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != exitAllowed {
		t.Fatalf("exit %d, json: %v\n%s", code, err, out)
	}
	if doc.Version != vouch.ReportVersion || doc.Verdict != vouch.Allowed || len(doc.Subjects[0].Root.Referrers) != 3 {
		t.Fatalf("unexpected report: %+v", doc)
	}

	// No verifier configured: the graph is shown and nothing is allowed.
	code, out, stderr = vouchRun(t, "verify", layout+"demo", layout+"multiarch")
	if code != exitDenied {
		t.Fatalf("exit %d, want %d (denied: no verifier)\n%s%s", code, exitDenied, out, stderr)
	}
	if !strings.Contains(out, "no verifier is configured") || !strings.Contains(out, "application/spdx+json") {
		t.Fatalf("output does not show the graph and the reason:\n%s", out)
	}

	code, out, _ = vouchRun(t, "config", "validate", "../../examples/config/quickstart.yaml")
	if code != 0 || !strings.Contains(out, "valid (1 verifiers, 1 trust stores, 1 policy scopes)") {
		t.Fatalf("config validate: exit %d: %s", code, out)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: v1\nverifiers: [{name: n, tpye: notation}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = vouchRun(t, "config", "validate", bad)
	if code != 1 || !strings.Contains(stderr, "verifiers[0].tpye: unknown field") {
		t.Fatalf("config validate of a bad file: exit %d: %s", code, stderr)
	}
	code, _, stderr = vouchRun(t, "verify", "--config", bad, layout+"demo")
	if code != exitUndecided || !strings.Contains(stderr, "verifiers[0].tpye") {
		t.Fatalf("verify with a bad config: exit %d: %s", code, stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"verify"}, "at least one SUBJECT"},
		{[]string{"verify", "Not A Ref"}, "invalid reference"},
		{[]string{"verify", "--no-such-flag", "x"}, "unknown flag"},
		{[]string{"verify", "-o", "yaml", "x"}, "-o must be"},
		{[]string{"referrers"}, "exactly one SUBJECT"},
		{[]string{"referrers", "a", "b"}, "exactly one SUBJECT"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"verify", "--max-depth", "0", "x"}, "must be positive"},
		{[]string{"verify", "--username", "u", "x"}, "needs --password-stdin"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := vouchRun(t, tt.args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, exitUsage, tt.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := vouchRun(t, "version")
	if code != 0 || !strings.HasPrefix(out, "vouch ") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

// graphJSON runs `vouch referrers -o json` and decodes the node tree.
func graphJSON(t *testing.T, args ...string) *vouch.Node {
	t.Helper()
	code, out, stderr := vouchRun(t, append([]string{"referrers", "--plain-http", "-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var root vouch.Node
	if err := json.Unmarshal([]byte(out), &root); err != nil {
		t.Fatalf("decode: %v\n%s", err, out)
	}
	return &root
}

// TestSeventyReferrers attaches 70 referrers (65 by oras-go, 5 by the oras
// CLI) in each registry and checks that every output format shows them all.
func TestSeventyReferrers(t *testing.T) {
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			p := testbed.NewPusher(t, reg.Host, "demo/seventy")
			img := p.Image("v1", "seventy")
			for i := 0; i < 65; i++ {
				p.Attach(img, "application/vnd.example.note", "text/plain", []byte(fmt.Sprintf("note %d", i)))
			}
			dir := t.TempDir()
			subject := fmt.Sprintf("%s/demo/seventy@%s", reg.Host, img.Digest)
			for i := 0; i < 5; i++ {
				name := fmt.Sprintf("sbom%d.spdx.json", i)
				if err := os.WriteFile(filepath.Join(dir, name), []byte(fmt.Sprintf(`{"spdxVersion":"SPDX-2.3","name":"%d"}`, i)), 0o644); err != nil {
					t.Fatal(err)
				}
				cmd := []string{"attach", "--plain-http", "--disable-path-validation", "--artifact-type", "application/spdx+json", subject, filepath.Join(dir, name) + ":application/spdx+json"}
				testbed.Run(t, nil, "oras", cmd...)
			}

			root := graphJSON(t, reg.Host+"/demo/seventy:v1")
			if len(root.Referrers) != 70 {
				t.Fatalf("json: %d referrers, want 70", len(root.Referrers))
			}
			spdx := 0
			for _, r := range root.Referrers {
				if r.ArtifactType == "application/spdx+json" {
					spdx++
				}
			}
			if spdx != 5 {
				t.Errorf("%d referrers typed application/spdx+json, want 5 (the type must come from the manifest)", spdx)
			}

			code, out, stderr := vouchRun(t, "referrers", "--plain-http", reg.Host+"/demo/seventy:v1")
			if code != 0 || strings.Count(out, "sha256:") != 71 {
				t.Fatalf("tree: exit %d, %d digests, want 71\n%s%s", code, strings.Count(out, "sha256:"), out, stderr)
			}
			code, out, _ = vouchRun(t, "referrers", "--plain-http", "-o", "dot", reg.Host+"/demo/seventy:v1")
			if code != 0 || !strings.HasPrefix(out, "digraph") || strings.Count(out, "->") != 70 {
				t.Fatalf("dot: exit %d, %d edges, want 70", code, strings.Count(out, "->"))
			}

			// The artifact-type filter is applied to the fetched manifests,
			// whatever the registry's index says.
			root = graphJSON(t, "--artifact-type", "application/spdx+json", subject)
			if len(root.Referrers) != 5 {
				t.Fatalf("filtered: %d referrers, want 5", len(root.Referrers))
			}
		})
	}
}

// TestIndexAndNested checks an image index whose platform manifests have
// referrers of their own, and a signature-like referrer on an SBOM.
func TestIndexAndNested(t *testing.T) {
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			p := testbed.NewPusher(t, reg.Host, "demo/multi")
			amd := p.Image("", "amd64")
			arm := p.Image("", "arm64")
			amd.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
			arm.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64"}
			index := p.Index("v1", amd, arm)
			p.Attach(index, "application/vnd.cncf.notary.signature", "application/jose+json", []byte("{}"))
			sbom := p.Attach(arm, "application/spdx+json", "application/spdx+json", []byte("{}"))
			p.Attach(sbom, "application/vnd.cncf.notary.signature", "application/jose+json", []byte("{}"))

			root := graphJSON(t, reg.Host+"/demo/multi:v1")
			if root.MediaType != ocispec.MediaTypeImageIndex || len(root.Manifests) != 2 || len(root.Referrers) != 1 {
				t.Fatalf("index node: %d manifests, %d referrers", len(root.Manifests), len(root.Referrers))
			}
			var armNode *vouch.Node
			for _, m := range root.Manifests {
				if m.Digest == arm.Digest {
					armNode = m
				}
			}
			if armNode == nil || len(armNode.Referrers) != 1 || len(armNode.Referrers[0].Referrers) != 1 {
				t.Fatalf("arm64 manifest should carry an SBOM with a signature: %+v", armNode)
			}
		})
	}
}

// TestLyingRegistry: a referrers listing names a manifest whose subject is
// another artifact, and a registry serves bytes that do not match the digest
// asked for. Neither may pass as a referrer of the subject.
func TestLyingRegistry(t *testing.T) {
	t.Run("tag-schema index lists a foreign manifest (distribution)", func(t *testing.T) {
		reg := testbed.Distribution(t)
		p := testbed.NewPusher(t, reg.Host, "demo/lie")
		img := p.Image("v1", "victim")
		other := p.Image("other", "other")
		foreign := p.Attach(other, "application/vnd.cncf.notary.signature", "application/jose+json", []byte("{}"))
		foreign.ArtifactType = "application/vnd.cncf.notary.signature"
		tag := strings.Replace(img.Digest.String(), ":", "-", 1)
		p.Manifest(ocispec.MediaTypeImageIndex, ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{foreign}}, tag)

		root := graphJSON(t, reg.Host+"/demo/lie:v1")
		if len(root.Referrers) != 1 || root.Referrers[0].Outcome != vouch.Errored || !strings.Contains(root.Referrers[0].Reason, "names subject") {
			t.Fatalf("foreign referrer not flagged: %+v", root.Referrers)
		}
	})

	t.Run("manifest bytes do not match the digest (ggcr)", func(t *testing.T) {
		var target atomic.Value
		target.Store("")
		reg := testbed.GGCR(t, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if d := target.Load().(string); d != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/manifests/"+d) {
					// Fault injection around the real registry: serve
					// other bytes under the requested digest.
					w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
					w.Header().Set("Docker-Content-Digest", d)
					body := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.cncf.notary.signature","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}`)
					w.Header().Set("Content-Length", fmt.Sprint(len(body)))
					_, _ = w.Write(body)
					return
				}
				h.ServeHTTP(w, r)
			})
		})
		p := testbed.NewPusher(t, reg.Host, "demo/lie")
		img := p.Image("v1", "victim")
		sig := p.Attach(img, "application/vnd.cncf.notary.signature", "application/jose+json", []byte(`{"a":"signature"}`))
		target.Store(sig.Digest.String())

		root := graphJSON(t, reg.Host+"/demo/lie:v1")
		if len(root.Referrers) != 1 || root.Referrers[0].Outcome != vouch.Errored || !strings.Contains(root.Referrers[0].Reason, "digest") {
			t.Fatalf("tampered referrer not flagged: %+v", root.Referrers[0])
		}
	})
}

func TestRegistryFailures(t *testing.T) {
	t.Run("429 then 200", func(t *testing.T) {
		var hits atomic.Int32
		reg := testbed.GGCR(t, func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// Fault injection: the first manifest request is throttled.
				if strings.Contains(r.URL.Path, "/manifests/") && hits.Add(1) == 1 {
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(http.StatusTooManyRequests)
					return
				}
				h.ServeHTTP(w, r)
			})
		})
		p := testbed.NewPusher(t, reg.Host, "demo/busy")
		hits.Store(100) // pushes are not throttled
		p.Image("v1", "busy")
		hits.Store(0)
		root := graphJSON(t, reg.Host+"/demo/busy:v1")
		if root.Digest == "" || hits.Load() < 2 {
			t.Fatalf("no retry happened (hits %d)", hits.Load())
		}
	})

	t.Run("unreachable registry", func(t *testing.T) {
		host := fmt.Sprintf("127.0.0.1:%d", testbed.FreePort(t))
		code, out, stderr := vouchRun(t, "verify", "--plain-http", "--timeout", "20s", host+"/app:v1")
		if code != exitUndecided || !strings.Contains(out, host) {
			t.Fatalf("exit %d, want %d\n%s%s", code, exitUndecided, out, stderr)
		}
		code, _, stderr = vouchRun(t, "referrers", "--plain-http", "--timeout", "20s", host+"/app:v1")
		if code != exitUndecided || !strings.Contains(stderr, host) {
			t.Fatalf("referrers: exit %d, stderr %s", code, stderr)
		}
	})

	t.Run("subject manifest over the limit", func(t *testing.T) {
		reg := testbed.GGCR(t, nil)
		p := testbed.NewPusher(t, reg.Host, "demo/big")
		p.Image("v1", "big")
		code, out, _ := vouchRun(t, "verify", "--plain-http", "--max-manifest-bytes", "100", reg.Host+"/demo/big:v1")
		if code != exitUndecided || !strings.Contains(out, "max-manifest-bytes") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
}
