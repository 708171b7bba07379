package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vouch-project/vouch"
)

// fingerprintOf is serve's verdict fingerprint for the config file at path.
func fingerprintOf(t *testing.T, gf *graphFlags, path string) (string, error) {
	t.Helper()
	vf := &verifierFlags{configPath: path}
	cfg, err := vf.load()
	if err != nil {
		return "", err
	}
	configHash, err := cfg.Fingerprint()
	if err != nil {
		return "", err
	}
	return verdictFingerprint(gf, vf, configHash)
}

// TestTrustFingerprint: the hash under which verdicts are cached changes
// with any trust file the config names, and not with caches.
func TestTrustFingerprint(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("vouch.yaml", `version: v1
trustStores: [{name: "ca:acme", files: [certs/ca.pem]}]
verifiers:
  - name: n
    type: notation
    notation: {trustPolicy: trustpolicy.json, configDir: notation, revocation: {crlCacheDir: crl}}
`)
	write("certs/ca.pem", "cert 1")
	write("trustpolicy.json", "{}")
	write("notation/truststore/x509/ca/acme/root.pem", "root 1")
	write("crl/cached.crl", "crl 1")
	hash := func() string {
		t.Helper()
		gf := graphFlags{}
		h, err := fingerprintOf(t, &gf, filepath.Join(dir, "vouch.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	first := hash()
	write("crl/cached.crl", "crl 2")
	write("crl/other.crl", "crl 3")
	if hash() != first {
		t.Fatal("a CRL cache changed the fingerprint")
	}
	for _, change := range [][2]string{
		{"certs/ca.pem", "cert 2"},
		{"trustpolicy.json", `{"version":"1.0"}`},
		{"notation/truststore/x509/ca/acme/root.pem", "root 2"},
		{"notation/truststore/x509/ca/acme/new.pem", "new"},
	} {
		before := hash()
		write(change[0], change[1])
		if hash() == before {
			t.Fatalf("changing %s did not change the fingerprint", change[0])
		}
	}
	gf := graphFlags{limits: vouch.Limits{MaxDepth: 16}}
	h, err := fingerprintOf(t, &gf, filepath.Join(dir, "vouch.yaml"))
	if err != nil || h == hash() {
		t.Fatalf("other limits, same fingerprint (%v)", err)
	}
}

// The quick flags' files count too.
func TestTrustFingerprintQuickFlags(t *testing.T) {
	dir := t.TempDir()
	key, cert := filepath.Join(dir, "cosign.pub"), filepath.Join(dir, "ca.pem")
	for _, p := range []string{key, cert} {
		if err := os.WriteFile(p, []byte("1"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	vf := &verifierFlags{cosignKeys: []string{key}, notationCerts: []string{cert}}
	hash := func() string {
		t.Helper()
		h, err := verdictFingerprint(&graphFlags{}, vf, "")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for _, p := range []string{key, cert} {
		before := hash()
		if err := os.WriteFile(p, []byte("2"), 0o600); err != nil {
			t.Fatal(err)
		}
		if hash() == before {
			t.Fatalf("changing %s did not change the fingerprint", p)
		}
	}
}
