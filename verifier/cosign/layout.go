package cosign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"

	"github.com/vouch-project/vouch"
)

// candidate is one signature to check, read from a layer.
type candidate struct {
	layer int
	// form is how it was stored: "simple-signing", "dsse" or "bundle".
	form   string
	entity verify.SignedEntity
	// verifyWith checks the signature with a key, to find the signer.
	verifyWith func(signature.Verifier) error
	// artifact is sigstore-go's artifact policy for the signature.
	artifact verify.ArtifactPolicyOption
	// simple is the simple-signing payload of a signature.
	simple *simpleSigning
	// stmt and stmtBytes are the statement of a DSSE envelope.
	stmt      *statement
	stmtBytes []byte
	// unsigned marks a bare statement: nothing to verify a signer on.
	unsigned bool
	// msgDigest is the SHA-256 digest a message-signature bundle signs.
	msgDigest     []byte
	cert          *x509.Certificate
	intermediates []*x509.Certificate
	entries       []*tlog.Entry
	timestamps    [][]byte
}

// isAttestation tells an attestation from a signature made as a statement.
func (c *candidate) isAttestation() bool {
	return c.stmt != nil && c.stmt.PredicateType != PredicateCosignSign
}

// readSimpleSigning reads a simple-signing layer and its annotations.
func (v *Verifier) readSimpleSigning(ctx context.Context, req *vouch.VerifyRequest, l ocispec.Descriptor) (*candidate, string, error) {
	b64 := l.Annotations[AnnotationSignature]
	if b64 == "" {
		return nil, "no signature: the layer has no " + AnnotationSignature + " annotation", nil
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, "malformed " + AnnotationSignature + " annotation: " + err.Error(), nil
	}
	payload, bad, err := fetch(ctx, req, l, MaxPayloadBytes)
	if err != nil || bad != "" {
		return nil, bad, err
	}
	simple, err := parseSimpleSigning(payload)
	if err != nil {
		return nil, "malformed signature: " + err.Error(), nil
	}
	c := &candidate{form: "simple-signing", simple: simple, artifact: verify.WithArtifact(bytes.NewReader(payload))}
	c.verifyWith = func(sv signature.Verifier) error {
		return sv.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload))
	}
	sum := sha256.Sum256(payload)
	e := &legacyEntity{content: bundle.NewMessageSignature(sum[:], "SHA2_256", sig)}
	if bad := c.readAnnotations(l.Annotations, e); bad != "" {
		return nil, bad, nil
	}
	if ts := l.Annotations[AnnotationRFC3161]; ts != "" {
		t, err := parseRFC3161(ts)
		if err != nil {
			return nil, "malformed " + AnnotationRFC3161 + " annotation: " + err.Error(), nil
		}
		e.timestamps = [][]byte{t}
	}
	c.entity, c.timestamps = e, e.timestamps
	return c, "", nil
}

// readEnvelope reads a DSSE layer (cosign's attestation layout) and its
// annotations. Its RFC 3161 timestamp is not used: cosign stamps the whole
// envelope, which sigstore-go does not verify.
func (v *Verifier) readEnvelope(ctx context.Context, req *vouch.VerifyRequest, l ocispec.Descriptor) (*candidate, string, error) {
	data, bad, err := fetch(ctx, req, l, MaxEnvelopeBytes)
	if err != nil || bad != "" {
		return nil, bad, err
	}
	env, payload, sig, err := parseEnvelope(data)
	if err != nil {
		return nil, "malformed attestation: " + err.Error(), nil
	}
	stmt, err := parseStatement(env.PayloadType, payload)
	if err != nil {
		return nil, "malformed attestation: " + err.Error(), nil
	}
	c := &candidate{form: "dsse", stmt: stmt, stmtBytes: payload, artifact: verify.WithoutArtifactUnsafe()}
	c.verifyWith = dsseVerifier(env.PayloadType, payload, sig)
	e := &legacyEntity{content: &bundle.Envelope{Envelope: &dsse.Envelope{
		PayloadType: env.PayloadType,
		Payload:     env.Payload,
		Signatures:  []dsse.Signature{{KeyID: env.Signatures[0].KeyID, Sig: env.Signatures[0].Sig}},
	}}}
	if bad := c.readAnnotations(l.Annotations, e); bad != "" {
		return nil, bad, nil
	}
	c.entity = e
	return c, "", nil
}

// readStatement reads an unsigned in-toto statement (a layer of BuildKit's
// attestation manifests). Its content is checked, but it has no signer.
func readStatement(ctx context.Context, req *vouch.VerifyRequest, l ocispec.Descriptor) (*candidate, string, error) {
	data, bad, err := fetch(ctx, req, l, MaxEnvelopeBytes)
	if err != nil || bad != "" {
		return nil, bad, err
	}
	stmt, err := parseStatement(payloadTypeInToto, data)
	if err != nil {
		return nil, "malformed attestation: " + err.Error(), nil
	}
	return &candidate{form: "statement", stmt: stmt, stmtBytes: data, unsigned: true}, "", nil
}

// readAnnotations reads the certificate, chain and Rekor bundle of a layer
// in cosign's layout.
func (c *candidate) readAnnotations(a map[string]string, e *legacyEntity) string {
	if pemCert := a[AnnotationCertificate]; pemCert != "" {
		certs, err := parseCertificates(pemCert, 1)
		if err != nil {
			return "malformed " + AnnotationCertificate + " annotation: " + err.Error()
		}
		c.cert = certs[0]
		if chain := a[AnnotationChain]; chain != "" {
			if c.intermediates, err = parseCertificates(chain, MaxChainCertificates); err != nil {
				return "malformed " + AnnotationChain + " annotation: " + err.Error()
			}
		}
	}
	if b := a[AnnotationBundle]; b != "" {
		entry, err := parseRekorBundle(b)
		if err != nil {
			return "malformed " + AnnotationBundle + " annotation: " + err.Error()
		}
		e.entries = []*tlog.Entry{entry}
		c.entries = e.entries
	}
	return ""
}

// readBundle reads a Sigstore bundle layer.
func (v *Verifier) readBundle(ctx context.Context, req *vouch.VerifyRequest, l ocispec.Descriptor) (*candidate, string, error) {
	data, bad, err := fetch(ctx, req, l, MaxEnvelopeBytes)
	if err != nil || bad != "" {
		return nil, bad, err
	}
	b, err := parseBundle(data)
	if err != nil {
		return nil, "malformed Sigstore bundle: " + err.Error(), nil
	}
	c := &candidate{form: "bundle", entity: b}
	if c.entries, err = b.TlogEntries(); err != nil {
		return nil, "malformed Sigstore bundle: " + err.Error(), nil
	}
	if c.timestamps, err = b.Timestamps(); err != nil {
		return nil, "malformed Sigstore bundle: " + err.Error(), nil
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return nil, "malformed Sigstore bundle: " + err.Error(), nil
	}
	c.cert, c.intermediates = vc.Certificate(), vc.Intermediates()
	content, err := b.SignatureContent()
	if err != nil {
		return nil, "malformed Sigstore bundle: " + err.Error(), nil
	}
	if env := content.EnvelopeContent(); env != nil {
		raw := env.RawEnvelope()
		payload, err := raw.DecodeB64Payload()
		if err != nil {
			return nil, "malformed Sigstore bundle: " + err.Error(), nil
		}
		if len(raw.Signatures) != 1 {
			return nil, fmt.Sprintf("malformed Sigstore bundle: its DSSE envelope has %d signatures; Sigstore signs with exactly one", len(raw.Signatures)), nil
		}
		sig, err := base64.StdEncoding.DecodeString(raw.Signatures[0].Sig)
		if err != nil {
			return nil, "malformed Sigstore bundle: " + err.Error(), nil
		}
		if c.stmt, err = parseStatement(raw.PayloadType, payload); err != nil {
			return nil, "malformed Sigstore bundle: " + err.Error(), nil
		}
		c.stmtBytes, c.artifact = payload, verify.WithoutArtifactUnsafe()
		c.verifyWith = dsseVerifier(raw.PayloadType, payload, sig)
		return c, "", nil
	}
	msg := content.MessageSignatureContent()
	if msg.DigestAlgorithm() != "SHA2_256" {
		return nil, fmt.Sprintf("unsupported Sigstore bundle: its message signature is over a %s digest; this verifier reads SHA2_256", msg.DigestAlgorithm()), nil
	}
	c.msgDigest = msg.Digest()
	c.artifact = verify.WithArtifactDigest("sha256", c.msgDigest)
	c.verifyWith = func(sv signature.Verifier) error {
		return sv.VerifySignature(bytes.NewReader(msg.Signature()), bytes.NewReader(nil), options.WithDigest(c.msgDigest))
	}
	return c, "", nil
}

// parseBundle decodes and validates a Sigstore bundle. v0.3 bundles may
// carry a certificate chain, whose intermediates help path building; trust
// anchors still come from the configuration only.
func parseBundle(data []byte) (*bundle.Bundle, error) {
	var head struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, err
	}
	var b bundle.Bundle
	if head.MediaType != BundleV01Type && head.MediaType != BundleV02Type {
		bundle.AllowCertificateChain()(&b)
	}
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return &b, nil
}

func dsseVerifier(payloadType string, payload, sig []byte) func(signature.Verifier) error {
	pae := dsse.PAE(payloadType, payload)
	return func(sv signature.Verifier) error {
		return sv.VerifySignature(bytes.NewReader(sig), bytes.NewReader(pae))
	}
}

// legacyEntity is a signature in cosign's layer layout, as a sigstore-go
// SignedEntity. Its verification content is set by withContent.
type legacyEntity struct {
	content    verify.SignatureContent
	entries    []*tlog.Entry
	timestamps [][]byte
}

var _ verify.SignedEntity = (*legacyEntity)(nil)

func (e *legacyEntity) HasInclusionPromise() bool {
	for _, t := range e.entries {
		if t.HasInclusionPromise() {
			return true
		}
	}
	return false
}

func (e *legacyEntity) HasInclusionProof() bool {
	for _, t := range e.entries {
		if t.HasInclusionProof() {
			return true
		}
	}
	return false
}

func (e *legacyEntity) SignatureContent() (verify.SignatureContent, error) { return e.content, nil }

func (e *legacyEntity) VerificationContent() (verify.VerificationContent, error) {
	return nil, errors.New("no verification content")
}

func (e *legacyEntity) TlogEntries() ([]*tlog.Entry, error) { return e.entries, nil }
func (e *legacyEntity) Timestamps() ([][]byte, error)       { return e.timestamps, nil }

// Version enables sigstore-go's compatibility with older clients, which
// cosign's layout comes from.
func (e *legacyEntity) Version() (string, error) { return "v0.1", nil }

// withContent gives an entity the verification content of the signer found.
type withContent struct {
	verify.SignedEntity
	vc verify.VerificationContent
}

func (w withContent) VerificationContent() (verify.VerificationContent, error) { return w.vc, nil }

// keyContent is a signature by the key that the trust material holds.
type keyContent struct{}

func (keyContent) CompareKey(key any, tm root.TrustedMaterial) bool {
	v, err := tm.PublicKeyVerifier("")
	if err != nil {
		return false
	}
	pub, err := v.PublicKey()
	if err != nil {
		return false
	}
	eq, ok := key.(interface{ Equal(x crypto.PublicKey) bool })
	return ok && eq.Equal(pub)
}
func (keyContent) ValidAtTime(t time.Time, tm root.TrustedMaterial) bool {
	v, err := tm.PublicKeyVerifier("")
	return err == nil && v.ValidAtTime(t)
}
func (keyContent) Certificate() *x509.Certificate      { return nil }
func (keyContent) Intermediates() []*x509.Certificate  { return nil }
func (keyContent) PublicKey() verify.PublicKeyProvider { return keyHint{} }

type keyHint struct{}

func (keyHint) Hint() string { return "" }

// certContent is a signature by a certificate, with the intermediates that
// came with it.
type certContent struct {
	leaf          *x509.Certificate
	intermediates []*x509.Certificate
}

func (c certContent) CompareKey(key any, _ root.TrustedMaterial) bool {
	cert, ok := key.(*x509.Certificate)
	return ok && c.leaf.Equal(cert)
}
func (c certContent) ValidAtTime(t time.Time, _ root.TrustedMaterial) bool {
	return !c.leaf.NotAfter.Before(t) && !c.leaf.NotBefore.After(t)
}
func (c certContent) Certificate() *x509.Certificate      { return c.leaf }
func (c certContent) Intermediates() []*x509.Certificate  { return c.intermediates }
func (c certContent) PublicKey() verify.PublicKeyProvider { return nil }
