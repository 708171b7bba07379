package testbed

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	notationgo "github.com/notaryproject/notation-go"
	notationregistry "github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/signer"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"

	"github.com/vouch-project/vouch/internal/testbed/testca"
)

// NotaryOptions shape a Notary's CA and signing certificate.
type NotaryOptions struct {
	// Organization is the O of both subjects. Optional; default
	// "vouch tests".
	Organization string
	// CAName and SignerName are the CNs of the CA and of the signing
	// certificate. Optional; default "test CA" and "test signer".
	CAName, SignerName string
	// NotBefore and NotAfter bound the CA's validity; the signing
	// certificate's ends an hour earlier. Optional; default from an hour
	// ago to a day from now.
	NotBefore, NotAfter time.Time
}

// Notary makes Notary Project signatures (JWS envelopes) with notation-go,
// the way `notation sign` does, with an ECDSA P-256 code-signing
// certificate issued by a CA made for it.
type Notary struct {
	// CA issued Signer; trust its certificate to verify the signatures.
	CA *testca.CA
	// Signer is the code-signing certificate and key.
	Signer *testca.Cert
}

// NewNotary makes a CA and a code-signing certificate under it.
func NewNotary(o NotaryOptions) (*Notary, error) {
	if o.Organization == "" {
		o.Organization = "vouch tests"
	}
	if o.CAName == "" {
		o.CAName = "test CA"
	}
	if o.SignerName == "" {
		o.SignerName = "test signer"
	}
	ca, err := testca.New(testca.Options{Subject: testca.Subject(o.Organization, o.CAName), NotBefore: o.NotBefore, NotAfter: o.NotAfter})
	if err != nil {
		return nil, err
	}
	leaf, err := ca.CodeSigning(testca.Subject(o.Organization, o.SignerName))
	if err != nil {
		return nil, err
	}
	return &Notary{CA: ca, Signer: leaf}, nil
}

// Sign attaches a JWS Notary Project signature of desc to target (a
// registry repository, an OCI layout store) as an OCI 1.1 referrer;
// oras-go keeps the referrers tag on registries without the referrers API.
func (n *Notary) Sign(ctx context.Context, target oras.GraphTarget, desc ocispec.Descriptor) error {
	sgn, err := signer.NewGenericSigner(n.Signer.Key, n.Signer.Chain)
	if err != nil {
		return err
	}
	opts := notationgo.SignOptions{
		SignerSignOptions: notationgo.SignerSignOptions{SignatureMediaType: "application/jose+json"},
		ArtifactReference: desc.Digest.String(),
	}
	if _, err := notationgo.Sign(ctx, sgn, notationregistry.NewRepository(target), opts); err != nil {
		return fmt.Errorf("notation sign %s: %w", desc.Digest, err)
	}
	return nil
}

// NotationSigner is a Notary for one test, failing it on error.
type NotationSigner struct {
	t testing.TB
	// Notary makes the signatures.
	Notary *Notary
	// CAFile is the CA certificate in PEM, to trust with --notation-cert.
	CAFile string
}

// NewNotationSigner makes a CA and a signing certificate valid for a day,
// and writes the CA certificate into a temporary folder of the test.
func NewNotationSigner(t testing.TB) *NotationSigner {
	t.Helper()
	n, err := NewNotary(NotaryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := n.CA.WriteCertFile(caFile); err != nil {
		t.Fatal(err)
	}
	return &NotationSigner{t: t, Notary: n, CAFile: caFile}
}

// Sign attaches a JWS Notary Project signature of desc to p's repository
// (Notary.Sign).
func (s *NotationSigner) Sign(p *Pusher, desc ocispec.Descriptor) {
	s.t.Helper()
	if err := s.Notary.Sign(context.Background(), p.Repo, desc); err != nil {
		s.t.Fatal(err)
	}
}
