package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"

	"github.com/vouch-project/vouch/config"
)

// TestVerifierDocExamples reads every YAML example of
// docs/verifiers/cosign.md, provenance.md and vulnreport.md as a config
// file and builds it, reading real trust material (a public key, a
// trusted root with a Fulcio CA, a CA certificate, a notation trust
// policy) put where the example names it: the examples are accepted as
// written. An example that is a fragment is completed the way its text
// says: indented cosign fields go under a keyless cosign verifier, and a
// policy alone gets a cosign and an sbom verifier.
func TestVerifierDocExamples(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), nil, vs.TimestampingAuthorities(), vs.RekorLogs())
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	rootCert, _, err := ca.GenerateRootCa()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"cosign.pub":                 pub,
		"keys/team-a.pub":            pub,
		"trusted_root.json":          trusted,
		"certs/codesigning-root.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootCert.Raw}),
		"trustpolicy.json":           []byte(`{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],"signatureVerification":{"level":"skip"}}]}`),
	} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The inline PEM of an example, "...", stands for a key.
	var pubLines []string
	for _, l := range strings.Split(strings.TrimSpace(string(pub)), "\n")[1:] {
		if !strings.HasPrefix(l, "-----") {
			pubLines = append(pubLines, l)
		}
	}
	placeholderPEM := regexp.MustCompile(`(?m)^( +)\.\.\.$`)

	n := 0
	for _, doc := range []string{"cosign.md", "provenance.md", "vulnreport.md"} {
		data, err := os.ReadFile(filepath.Join("..", "docs", "verifiers", doc))
		if err != nil {
			t.Fatal(err)
		}
		blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(data), -1)
		if len(blocks) == 0 {
			t.Fatalf("%s: no YAML examples", doc)
		}
		for i, b := range blocks {
			n++
			src := b[1]
			switch {
			case strings.HasPrefix(src, "      "): // fields of a keyless cosign verifier
				src = "verifiers:\n  - name: keyless\n    type: cosign\n    cosign:\n      trustedRoot: trusted_root.json\n" + src
			case !strings.Contains(src, "\nverifiers:") && !strings.HasPrefix(src, "verifiers:"):
				src = `verifiers:
  - {name: cosign, type: cosign, cosign: {keys: {files: [cosign.pub]}, ignoreTlogUnsafe: true, attestations: {predicateTypes: [slsaprovenance1]}}}
  - {name: sbom, type: sbom, sbom: {}}
` + src
			}
			src = strings.ReplaceAll(src, "/etc/vouch/sigstore/", "")
			src = placeholderPEM.ReplaceAllStringFunc(src, func(m string) string {
				indent := m[:len(m)-3]
				return indent + strings.Join(pubLines, "\n"+indent)
			})
			if !strings.HasPrefix(src, "version:") {
				src = "version: v1\n" + src
			}
			t.Run(fmt.Sprintf("%s#%d", doc, i+1), func(t *testing.T) {
				f, err := config.Parse([]byte(src), dir)
				if err == nil {
					_, _, err = f.Build()
				}
				if err != nil {
					t.Errorf("the example at %s's YAML block %d does not build: %v\n%s", doc, i+1, err, src)
				}
			})
		}
	}
	if n < 12 {
		t.Fatalf("only %d examples found", n)
	}
}
