package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	notationgo "github.com/notaryproject/notation-go"
	notationregistry "github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/signer"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/oci"
)

// exampleSigner holds a throw-away example CA and a signing certificate it
// issued.
type exampleSigner struct {
	key   *ecdsa.PrivateKey
	chain []*x509.Certificate
	caPEM []byte
}

// newSigner makes an example CA and a code-signing certificate valid for ten
// years, with the subject fields Notation's trusted identities need.
func newSigner() (*exampleSigner, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now().Truncate(time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Country: []string{"US"}, Province: []string{"WA"}, Organization: []string{"vouch examples"}, CommonName: "vouch example CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{Country: []string{"US"}, Province: []string{"WA"}, Organization: []string{"vouch examples"}, CommonName: "vouch example signer"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0).Add(-time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return nil, err
	}
	return &exampleSigner{
		key:   key,
		chain: []*x509.Certificate{leaf, ca},
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}, nil
}

// sign attaches a JWS Notary Project signature of desc to the layout, the
// way `notation sign --oci-layout` does.
func (s *exampleSigner) sign(ctx context.Context, store *oci.Store, desc ocispec.Descriptor) error {
	sgn, err := signer.NewGenericSigner(s.key, s.chain)
	if err != nil {
		return err
	}
	opts := notationgo.SignOptions{
		SignerSignOptions: notationgo.SignerSignOptions{SignatureMediaType: "application/jose+json"},
		ArtifactReference: desc.Digest.String(),
	}
	if _, err := notationgo.Sign(ctx, sgn, notationregistry.NewRepository(store), opts); err != nil {
		return fmt.Errorf("sign %s: %w", desc.Digest, err)
	}
	return nil
}
