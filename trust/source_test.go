package trust_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouch-project/vouch/trust"
)

// material makes a self-signed certificate and public keys of each kind.
type material struct {
	certDER                       []byte
	certPEM, ecPEM, rsaPEM, edPEM string
	pkcs1PEM                      string
}

func newMaterial(t *testing.T) material {
	t.Helper()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ec.PublicKey, ec)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkix := func(pub any) string {
		b, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: b}))
	}
	return material{
		certDER:  der,
		certPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		ecPEM:    pkix(&ec.PublicKey),
		rsaPEM:   pkix(&rsaKey.PublicKey),
		edPEM:    pkix(edPub),
		pkcs1PEM: string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)})),
	}
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSourceRead(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "f.pem", []byte("12345"))
	cases := []struct {
		name     string
		src      trust.Source
		max      int64
		want     string // the data, when no error
		wantErr  string
		wantName string
	}{
		{"file", trust.File(file), 5, "12345", "", file},
		{"file over the bound", trust.File(file), 4, "", file + " is larger than 4 bytes", file},
		{"missing file", trust.File(filepath.Join(dir, "nope.pem")), 5, "", "open " + filepath.Join(dir, "nope.pem"), filepath.Join(dir, "nope.pem")},
		{"named file", trust.Source{Path: file, Name: "keys.files[0]"}, 5, "12345", "", "keys.files[0]"},
		{"inline", trust.Inline("-----BEGIN X-----", ""), 1, "-----BEGIN X-----", "", "inline PEM"},
		{"named inline", trust.Inline("pem", "ca:acme pem"), 5, "pem", "", "ca:acme pem"},
		{"empty inline", trust.Inline(" \n", "store.pem"), 5, "", "store.pem: empty", "store.pem"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.src.String(); got != c.wantName {
				t.Errorf("String() = %q, want %q", got, c.wantName)
			}
			data, err := c.src.Read(c.max)
			switch {
			case c.wantErr == "" && (err != nil || string(data) != c.want):
				t.Fatalf("Read: %q, %v; want %q", data, err, c.want)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("Read: error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

func TestReadCertificates(t *testing.T) {
	m := newMaterial(t)
	dir := t.TempDir()
	cases := []struct {
		name    string
		src     trust.Source
		certs   int
		wantErr string
	}{
		{"PEM file", trust.File(writeFile(t, dir, "ca.pem", []byte(m.certPEM))), 1, ""},
		{"PEM file with text around", trust.File(writeFile(t, dir, "text.pem", []byte("Certificate:\n  ...\n"+m.certPEM+m.certPEM+"trailer\n"))), 2, ""},
		{"DER file", trust.File(writeFile(t, dir, "ca.der", m.certDER)), 1, ""},
		{"inline PEM", trust.Inline(m.certPEM, ""), 1, ""},
		{"inline, not PEM", trust.Inline("hello", "inline PEM #0"), 0, "inline PEM #0: not PEM"},
		{"inline DER is not read", trust.Inline(string(m.certDER), "x"), 0, "x: not PEM"},
		{"a key, not a certificate", trust.File(writeFile(t, dir, "key.pem", []byte(m.ecPEM))), 0, filepath.Join(dir, "key.pem") + `: unexpected PEM block "PUBLIC KEY", want CERTIFICATE`},
		{"neither PEM nor DER", trust.File(writeFile(t, dir, "junk", []byte("junk"))), 0, filepath.Join(dir, "junk") + ": neither PEM nor DER certificates"},
		{"over the bound", trust.File(writeFile(t, dir, "big.pem", []byte(strings.Repeat("x", 5<<10)))), 0, "is larger than 4096 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			certs, err := trust.ReadCertificates(c.src, 4<<10)
			switch {
			case c.wantErr == "" && (err != nil || len(certs) != c.certs):
				t.Fatalf("%d certificates, %v; want %d", len(certs), err, c.certs)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

func TestParsePEMCertificates(t *testing.T) {
	m := newMaterial(t)
	cases := []struct {
		name    string
		data    string
		certs   int
		wantErr string
	}{
		{"one", m.certPEM, 1, ""},
		{"two", m.certPEM + m.certPEM, 2, ""},
		{"none", "hello", 0, "no PEM block found"},
		{"trailing junk", m.certPEM + "junk", 0, "trailing data that is not PEM"},
		{"a key", m.certPEM + m.ecPEM, 0, `PEM block 1 is a "PUBLIC KEY", not a CERTIFICATE`},
		{"bad DER", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 0, "PEM block 0: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			certs, err := trust.ParsePEMCertificates([]byte(c.data))
			switch {
			case c.wantErr == "" && (err != nil || len(certs) != c.certs):
				t.Fatalf("%d certificates, %v; want %d", len(certs), err, c.certs)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

func TestReadPublicKeys(t *testing.T) {
	m := newMaterial(t)
	dir := t.TempDir()
	cases := []struct {
		name    string
		src     trust.Source
		keys    int
		wantErr string
	}{
		{"ECDSA", trust.File(writeFile(t, dir, "ec.pub", []byte(m.ecPEM))), 1, ""},
		{"RSA, Ed25519 and PKCS #1", trust.Inline(m.rsaPEM+m.edPEM+m.pkcs1PEM, ""), 3, ""},
		{"a certificate", trust.File(writeFile(t, dir, "cert.pem", []byte(m.certPEM))), 0, filepath.Join(dir, "cert.pem") + `: PEM block 0: a "CERTIFICATE" block is not a public key (want PUBLIC KEY)`},
		{"not PEM", trust.Inline("junk", "keys.pem"), 0, "keys.pem: no PEM block found"},
		{"trailing junk", trust.Inline(m.ecPEM+"junk", ""), 0, "inline PEM: trailing data that is not PEM"},
		{"missing file", trust.File(filepath.Join(dir, "nope.pub")), 0, "open " + filepath.Join(dir, "nope.pub")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			keys, err := trust.ReadPublicKeys(c.src, 1<<20)
			switch {
			case c.wantErr == "" && (err != nil || len(keys) != c.keys):
				t.Fatalf("%d keys, %v; want %d", len(keys), err, c.keys)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

func TestReadTrustedRoot(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "trusted_root.json", []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`))
	if data, err := trust.ReadTrustedRoot(trust.File(p), 1<<10); err != nil || !strings.Contains(string(data), "trustedroot") {
		t.Fatalf("%q, %v", data, err)
	}
	if _, err := trust.ReadTrustedRoot(trust.File(p), 10); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("over the bound: %v, want an error naming %s", err, p)
	}
}

func TestSourceRef(t *testing.T) {
	ref := trust.Ref{Kind: trust.KindSecret, Namespace: "vouch", Name: "cosign-pub", Key: "cosign.pub"}
	if got, want := ref.String(), "secret vouch/cosign-pub key cosign.pub"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if _, err := trust.Referenced(ref, nil).Read(100); !errors.Is(err, trust.ErrNoResolver) || !strings.Contains(err.Error(), "secret vouch/cosign-pub key cosign.pub") {
		t.Errorf("without a resolver: %v, want ErrNoResolver naming the reference", err)
	}
	data := map[trust.Ref]string{ref: "0123456789"}
	r := trust.ResolverFunc(func(ref trust.Ref, max int64) ([]byte, error) {
		v, ok := data[ref]
		if !ok {
			return nil, fmt.Errorf("%s: not found", ref)
		}
		return []byte(v), nil
	})
	got, err := trust.Referenced(ref, r).Read(100)
	if err != nil || string(got) != "0123456789" {
		t.Fatalf("Read = %q, %v", got, err)
	}
	if _, err := trust.Referenced(ref, r).Read(5); err == nil || !strings.Contains(err.Error(), "more than 5 bytes") {
		t.Errorf("a value over the bound: %v", err)
	}
	missing := ref
	missing.Key = "other"
	if _, err := trust.Referenced(missing, r).Read(100); err == nil || !strings.Contains(err.Error(), "key other") {
		t.Errorf("a missing key: %v", err)
	}
}

func TestRefValidate(t *testing.T) {
	for _, tc := range []struct {
		ref        trust.Ref
		namespaced bool
		err        string
	}{
		{trust.Ref{Kind: "Secret", Name: "a", Key: "b"}, true, ""},
		{trust.Ref{Kind: "ConfigMap", Namespace: "ns", Name: "a.b", Key: "ca.crt"}, false, ""},
		{trust.Ref{Name: "a", Key: "b"}, false, "x.kind: required"},
		{trust.Ref{Kind: "Pod", Name: "a", Key: "b"}, false, `x.kind: "Pod" is not Secret or ConfigMap`},
		{trust.Ref{Kind: "Secret", Key: "b"}, false, "x.name: required"},
		{trust.Ref{Kind: "Secret", Name: "A_", Key: "b"}, false, "x.name:"},
		{trust.Ref{Kind: "Secret", Name: "a"}, false, "x.key: required"},
		{trust.Ref{Kind: "Secret", Name: "a", Key: "a/b"}, false, "x.key:"},
		{trust.Ref{Kind: "Secret", Namespace: "ns", Name: "a", Key: "b"}, true, "x.namespace: a VouchConfig reads"},
		{trust.Ref{Kind: "Secret", Namespace: "N S", Name: "a", Key: "b"}, false, "x.namespace:"},
	} {
		err := tc.ref.Validate("x", tc.namespaced)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%+v (namespaced %v): %v, want %q", tc.ref, tc.namespaced, err, tc.err)
		}
	}
}
