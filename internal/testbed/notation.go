package testbed

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	notationgo "github.com/notaryproject/notation-go"
	notationregistry "github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/signer"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// NotationSigner signs with a CA and a code-signing certificate made for one
// test, the way `notation sign` does, with notation-go.
type NotationSigner struct {
	t     testing.TB
	key   *ecdsa.PrivateKey
	chain []*x509.Certificate
	// CAFile is the CA certificate in PEM, to trust with --notation-cert.
	CAFile string
}

// NewNotationSigner makes a CA and a signing certificate valid for a day.
func NewNotationSigner(t testing.TB) *NotationSigner {
	t.Helper()
	now := time.Now()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	name := func(cn string) pkix.Name {
		return pkix.Name{Country: []string{"US"}, Province: []string{"WA"}, Organization: []string{"vouch tests"}, CommonName: cn}
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: name("test CA"),
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: name("test signer"),
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(23 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &NotationSigner{t: t, key: key, chain: []*x509.Certificate{leaf, ca}, CAFile: caFile}
}

// Sign attaches a JWS Notary Project signature of desc to p's repository,
// as an OCI 1.1 referrer (oras-go keeps the referrers tag on registries
// without the referrers API).
func (s *NotationSigner) Sign(p *Pusher, desc ocispec.Descriptor) {
	s.t.Helper()
	sgn, err := signer.NewGenericSigner(s.key, s.chain)
	if err != nil {
		s.t.Fatal(err)
	}
	opts := notationgo.SignOptions{
		SignerSignOptions: notationgo.SignerSignOptions{SignatureMediaType: "application/jose+json"},
		ArtifactReference: desc.Digest.String(),
	}
	if _, err := notationgo.Sign(context.Background(), sgn, notationregistry.NewRepository(p.Repo), opts); err != nil {
		s.t.Fatalf("notation sign %s: %v", desc.Digest, err)
	}
}
