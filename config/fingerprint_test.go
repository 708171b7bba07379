package config_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vouch-project/vouch/config"
)

// TrustFiles names exactly the files and folders the verifiers read, and
// Fingerprint changes with each of them and with the document, not with
// caches.
func TestTrustFilesAndFingerprint(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	doc := `version: v1
registries: {dockerConfig: docker.json}
trustStores: [{name: "ca:acme", files: [certs/ca.pem]}]
verifiers:
  - {name: n, type: notation, notation: {trustPolicy: tp.json, configDir: notation, revocation: {crlCacheDir: crl}, plugins: {dir: plugins}}}
  - {name: c, type: cosign, cosign: {keys: {files: [cosign.pub]}, certificateRoots: {files: [roots.pem]}, identities: [{issuer: i, subject: s}], trustedRoot: trusted_root.json}}
  - {name: s, type: schema, schema: {artifactTypes: [a], schemaURL: "https://x.example/s.json", schemaFile: s.json, resources: [{url: "https://x.example/r.json", file: r.json}]}}
  - {name: p, type: plugin, plugin: {path: /usr/bin/true, artifactTypes: ["*"], args: [args.txt]}}
  - {name: b, type: sbom, sbom: {}}
`
	write("vouch.yaml", doc)
	for _, name := range []string{"docker.json", "certs/ca.pem", "tp.json", "notation/truststore/x509/ca/acme/root.pem", "crl/cached.crl", "plugins/x/notation-x", "cosign.pub", "roots.pem", "trusted_root.json", "s.json", "r.json", "args.txt"} {
		write(name, name+" 1")
	}
	f, err := config.Load(filepath.Join(dir, "vouch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"certs/ca.pem", "tp.json", "notation/truststore", "plugins", "cosign.pub", "roots.pem", "trusted_root.json", "s.json", "r.json"}
	for i, p := range want {
		want[i] = filepath.Join(dir, p)
	}
	want = append(want, "/usr/bin/true")
	if got := f.TrustFiles(); !slices.Equal(got, want) {
		t.Fatalf("TrustFiles:\n got %q\nwant %q", got, want)
	}

	fingerprint := func() string {
		t.Helper()
		f, err := config.Load(filepath.Join(dir, "vouch.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		h, err := f.Fingerprint()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	first := fingerprint()
	for _, name := range []string{"crl/cached.crl", "crl/new.crl", "docker.json", "args.txt"} {
		write(name, name+" 2")
		if fingerprint() != first {
			t.Fatalf("changing %s changed the fingerprint", name)
		}
	}
	for _, name := range []string{"certs/ca.pem", "tp.json", "notation/truststore/x509/ca/acme/root.pem", "notation/truststore/x509/ca/acme/new.pem", "plugins/x/notation-x", "plugins/y/notation-y", "cosign.pub", "roots.pem", "trusted_root.json", "s.json", "r.json"} {
		before := fingerprint()
		write(name, name+" 2")
		if fingerprint() == before {
			t.Errorf("changing %s did not change the fingerprint", name)
		}
	}
	before := fingerprint()
	write("vouch.yaml", doc+"# a comment\n")
	if fingerprint() == before {
		t.Error("changing the config document did not change the fingerprint")
	}
}
