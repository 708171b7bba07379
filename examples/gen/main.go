// Command gen writes the sample OCI image layout under examples/layout that
// the README's quick start verifies:
//
//   - "demo": an image with an SPDX SBOM and a SARIF vulnerability report
//     attached as OCI 1.1 referrers; the image and the SBOM carry Notary
//     Project signatures (JWS), made with notation-go as `notation sign
//     --oci-layout` makes them;
//   - "unsigned": an image with an SBOM and no signature;
//   - "multiarch": an image index over two platform images, the arm64 one
//     with an SBOM.
//
// Each run makes a new example CA and signing key (internal/testbed's
// Notary, under a CA of internal/testbed/testca): the CA certificate goes
// to examples/config/certs/example-ca.pem, the private keys are thrown away.
// Everything but the signatures is the same byte for byte on every run; a
// test checks that the committed copy is current.
//
// Usage: go run ./examples/gen [LAYOUT-DIR CA-CERT-FILE]
//
//	(default examples/layout examples/config/certs/example-ca.pem)
package main

import (
	"context"
	_ "crypto/sha256" // digests in this program are sha256
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/oci"

	"github.com/vouch-project/vouch/internal/testbed"
)

func main() {
	dir, caFile := "examples/layout", "examples/config/certs/example-ca.pem"
	if len(os.Args) == 3 {
		dir, caFile = os.Args[1], os.Args[2]
	}
	// An example CA and code-signing certificate valid for ten years,
	// with the subject fields Notation's trusted identities need.
	now := time.Now().Truncate(time.Hour)
	signer, err := testbed.NewNotary(testbed.NotaryOptions{
		Organization: "vouch examples", CAName: "vouch example CA", SignerName: "vouch example signer",
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
	})
	if err == nil {
		err = signer.CA.WriteCertFile(caFile)
	}
	if err == nil {
		err = generate(context.Background(), dir, signer)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// generate writes the sample layout into dir, replacing what is there, and
// signs with s when s is not nil.
func generate(ctx context.Context, dir string, s *testbed.Notary) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	store, err := oci.New(dir)
	if err != nil {
		return err
	}
	store.AutoSaveIndex = false
	w := &writer{ctx: ctx, store: store}

	demo := w.image("hello from vouch\n", &ocispec.Platform{OS: "linux", Architecture: "amd64"})
	w.tag(demo, "demo")
	demoSBOM := w.attach(demo, "application/spdx+json", sbom)
	w.attach(demo, "application/sarif+json", sarif)

	unsigned := w.image("nobody vouches for me\n", &ocispec.Platform{OS: "linux", Architecture: "amd64"})
	w.tag(unsigned, "unsigned")
	w.attach(unsigned, "application/spdx+json", sbom)

	amd := w.image("multiarch amd64\n", &ocispec.Platform{OS: "linux", Architecture: "amd64"})
	arm := w.image("multiarch arm64\n", &ocispec.Platform{OS: "linux", Architecture: "arm64"})
	amd.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64"}
	index := w.manifest(ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{amd, arm},
	})
	w.tag(index, "multiarch")
	w.attach(arm, "application/spdx+json", sbom)
	if w.err != nil {
		return w.err
	}
	if s != nil {
		for _, d := range []ocispec.Descriptor{demo, demoSBOM} {
			if err := s.Sign(ctx, store, d); err != nil {
				return err
			}
		}
	}
	if err := store.SaveIndex(); err != nil {
		return err
	}
	return sortIndex(filepath.Join(dir, ocispec.ImageIndexFile))
}

// sortIndex orders index.json (oras-go writes it in map order): tagged
// manifests by tag, then the rest by digest.
func sortIndex(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var index ocispec.Index
	if err := json.Unmarshal(data, &index); err != nil {
		return err
	}
	key := func(d ocispec.Descriptor) string {
		if tag := d.Annotations[ocispec.AnnotationRefName]; tag != "" {
			return "0" + tag
		}
		return "1" + d.Digest.String()
	}
	sort.Slice(index.Manifests, func(i, j int) bool { return key(index.Manifests[i]) < key(index.Manifests[j]) })
	data, err = json.MarshalIndent(index, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// writer pushes into the layout, keeping the first error.
type writer struct {
	ctx   context.Context
	store *oci.Store
	err   error
}

func (w *writer) push(mediaType string, data []byte) ocispec.Descriptor {
	desc, err := testbed.PushBlob(w.ctx, w.store, mediaType, data)
	w.keep(err)
	return desc
}

func (w *writer) manifest(mediaType string, v any) ocispec.Descriptor {
	desc, err := testbed.PushManifest(w.ctx, w.store, mediaType, v, "")
	w.keep(err)
	return desc
}

func (w *writer) tag(desc ocispec.Descriptor, tag string) {
	if w.err == nil {
		w.err = w.store.Tag(w.ctx, desc, tag)
	}
}

// keep keeps err when it is the first.
func (w *writer) keep(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *writer) image(layer string, p *ocispec.Platform) ocispec.Descriptor {
	config, _ := json.Marshal(ocispec.Image{Platform: *p, RootFS: ocispec.RootFS{Type: "layers"}})
	return w.manifest(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    w.push(ocispec.MediaTypeImageConfig, config),
		Layers:    []ocispec.Descriptor{w.push(ocispec.MediaTypeImageLayer, []byte(layer))},
	})
}

// attach pushes an artifact of artifactType whose subject is subject, with
// one layer of artifactType holding body.
func (w *writer) attach(subject ocispec.Descriptor, artifactType, body string) ocispec.Descriptor {
	m, err := testbed.ArtifactManifest(w.ctx, w.store, subject, artifactType, artifactType, []byte(body))
	w.keep(err)
	m.Annotations = map[string]string{ocispec.AnnotationCreated: "2026-11-25T00:00:00Z"}
	return w.manifest(ocispec.MediaTypeImageManifest, m)
}

const sbom = `{
  "spdxVersion": "SPDX-2.3",
  "dataLicense": "CC0-1.0",
  "SPDXID": "SPDXRef-DOCUMENT",
  "name": "vouch-demo",
  "documentNamespace": "https://example.com/vouch-demo",
  "creationInfo": {"created": "2026-11-25T00:00:00Z", "creators": ["Tool: vouch-examples-gen"]},
  "packages": [
    {"SPDXID": "SPDXRef-Package-busybox", "name": "busybox", "versionInfo": "1.36.1", "downloadLocation": "NOASSERTION", "licenseConcluded": "GPL-2.0-only"},
    {"SPDXID": "SPDXRef-Package-zlib", "name": "zlib", "versionInfo": "1.3.1", "downloadLocation": "NOASSERTION", "licenseConcluded": "Zlib"}
  ]
}
`

const sarif = `{
  "version": "2.1.0",
  "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
  "runs": [{
    "tool": {"driver": {"name": "Trivy", "version": "0.74.0", "rules": []}},
    "results": [],
    "properties": {"imageName": "vouch-demo"}
  }]
}
`
