// Package cosign verifies the Sigstore signatures and attestations that
// cosign attaches to OCI artifacts, with sigstore-go, offline.
//
// Three layouts are read:
//
//   - cosign's tag layout: a manifest under the tag "sha256-<hex>.sig" (the
//     Executor gives it artifact type vouch.CosignSignatureType), one layer
//     per signature, each a simple-signing payload whose
//     critical.image.docker-manifest-digest names the image, with the
//     signature, certificate, chain, Rekor bundle and RFC 3161 timestamp in
//     the layer's annotations; attestations likewise under
//     "sha256-<hex>.att" (vouch.CosignAttestationType), one DSSE envelope
//     holding an in-toto statement per layer.
//   - the same manifests attached as OCI 1.1 referrers (`cosign sign
//     --registry-referrers-mode=oci-1-1`, artifact type
//     application/vnd.dev.cosign.artifact.sig.v1+json; attestations as
//     application/vnd.in-toto+json).
//   - Sigstore bundles attached as OCI 1.1 referrers (`cosign sign
//     --new-bundle-format`, cosign v3's default), one bundle per manifest:
//     a DSSE envelope whose statement has predicate type
//     https://sigstore.dev/cosign/sign/v1 is a signature of its subject,
//     any other predicate type an attestation.
//
// Trust is public keys (`cosign verify --key`), certificates chaining to
// configured roots (--certificate-chain) or keyless: Fulcio certificates
// whose OIDC issuer and subject match a configured identity, checked against
// a Sigstore trusted_root.json with Rekor inclusion evidence and SCTs, as
// the Sigstore client specification says:
// https://github.com/sigstore/architecture-docs/blob/main/client-spec.md#4-verification
//
// Every check goes through sigstore-go's verify.Verifier; this package only
// reads the layouts, chooses the trust material for the signer it finds,
// and checks what sigstore-go leaves to its callers: that the payload names
// the subject, annotations, and attestation predicates.
package cosign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"

	"github.com/vouch-project/vouch"
)

// Artifact types this verifier handles.
const (
	// SignatureType is the type of cosign's signature manifests: under the
	// "sha256-<hex>.sig" tag, or attached as OCI 1.1 referrers.
	SignatureType = vouch.CosignSignatureType
	// AttestationType is the type vouch gives cosign's "sha256-<hex>.att"
	// attestation manifests. Handled when attestations are configured.
	AttestationType = vouch.CosignAttestationType
	// InTotoType is the type of cosign v2's attestation manifests attached
	// as OCI 1.1 referrers. Handled when attestations are configured.
	InTotoType = "application/vnd.in-toto+json"
	// BundleV01Type, BundleV02Type and BundleV03Type are Sigstore bundle
	// media types, used as artifact types of bundle referrers; cosign
	// attaches v0.3.
	BundleV01Type = "application/vnd.dev.sigstore.bundle+json;version=0.1"
	BundleV02Type = "application/vnd.dev.sigstore.bundle+json;version=0.2"
	BundleV03Type = "application/vnd.dev.sigstore.bundle.v0.3+json"
)

// Layer media types.
const (
	// MediaTypeSimpleSigning is a signature layer: a simple-signing payload.
	MediaTypeSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	// MediaTypeDSSE is an attestation layer: a DSSE envelope.
	MediaTypeDSSE = "application/vnd.dsse.envelope.v1+json"
)

// Annotations of cosign's signature and attestation layers.
const (
	AnnotationSignature     = "dev.cosignproject.cosign/signature"
	AnnotationCertificate   = "dev.sigstore.cosign/certificate"
	AnnotationChain         = "dev.sigstore.cosign/chain"
	AnnotationBundle        = "dev.sigstore.cosign/bundle"
	AnnotationRFC3161       = "dev.sigstore.cosign/rfc3161timestamp"
	AnnotationPredicateType = "predicateType"
)

// Bounds on what one signature manifest may make the verifier read.
const (
	// MaxPayloadBytes bounds a simple-signing payload; cosign's are a few
	// hundred bytes.
	MaxPayloadBytes = 1 << 20
	// MaxEnvelopeBytes bounds a DSSE envelope or a bundle: attestations
	// carry SBOMs and provenance.
	MaxEnvelopeBytes = 32 << 20
	// MaxSignatures bounds the layers of one manifest, each a signature to
	// check.
	MaxSignatures = 64
	// MaxStatementDetailBytes bounds the in-toto statement that an
	// attestation's result carries in Details["statement"] for policies;
	// a larger statement is left out and Details["statementOmitted"] says
	// so.
	MaxStatementDetailBytes = 1 << 20
)

// DefaultName is the verifier's name when New is given none.
const DefaultName = "cosign"

// Verifier verifies cosign signatures and attestations. It is safe for
// concurrent use.
type Verifier struct {
	name        string
	keys        []*trustedKey
	roots       []*x509.Certificate
	trustedRoot *root.TrustedRoot
	// fulcio says whether certificates under the trusted root's CAs are
	// trusted (identities are configured).
	fulcio      bool
	identities  verify.CertificateIdentities
	wantID      string
	ignoreTlog  bool
	ignoreSCT   bool
	annotations map[string]string
	att         *attestationPolicy
}

// New builds the verifier named name (DefaultName when empty) from c,
// reading the key, certificate and trusted-root files it names once;
// relative paths resolve against baseDir. Build a new Verifier to pick up
// changed files.
func New(name string, c Config, baseDir string) (*Verifier, error) {
	const prefix = "cosign"
	if err := c.Validate(prefix); err != nil {
		return nil, err
	}
	if name == "" {
		name = DefaultName
	}
	v := &Verifier{name: name, ignoreTlog: c.IgnoreTlogUnsafe, ignoreSCT: c.IgnoreSCTUnsafe, annotations: c.Annotations}
	var err error
	if v.keys, err = loadKeys(c.Keys, baseDir, prefix+".keys"); err != nil {
		return nil, err
	}
	if v.roots, err = loadCertificates(c.CertificateRoots, baseDir, prefix+".certificateRoots"); err != nil {
		return nil, err
	}
	if c.TrustedRoot != "" {
		if v.trustedRoot, err = loadTrustedRoot(resolve(baseDir, c.TrustedRoot)); err != nil {
			return nil, fmt.Errorf("%s.trustedRoot: %w", prefix, err)
		}
		v.fulcio = len(c.Identities) > 0
	}
	var want []string
	for i, id := range c.Identities {
		ci, err := verify.NewShortCertificateIdentity(id.Issuer, id.IssuerRegExp, id.Subject, id.SubjectRegExp)
		if err != nil {
			return nil, fmt.Errorf("%s.identities[%d]: %w", prefix, i, err)
		}
		v.identities = append(v.identities, ci)
		want = append(want, describeIdentity(id))
	}
	v.wantID = strings.Join(want, " or ")
	if c.Attestations != nil {
		if v.att, err = newAttestationPolicy(c.Attestations); err != nil {
			return nil, fmt.Errorf("%s.attestations: %w", prefix, err)
		}
	}
	return v, nil
}

func describeIdentity(id Identity) string {
	part := func(name, exact, re string) string {
		var s []string
		if exact != "" {
			s = append(s, name+" "+exact)
		}
		if re != "" {
			s = append(s, name+" matching "+re)
		}
		return strings.Join(s, " ")
	}
	return part("issuer", id.Issuer, id.IssuerRegExp) + " " + part("subject", id.Subject, id.SubjectRegExp)
}

// Name returns the verifier's name in reports.
func (v *Verifier) Name() string { return v.name }

// Handles reports whether artifactType is a cosign signature manifest, a
// Sigstore bundle, or (with attestations configured) an attestation
// manifest.
func (v *Verifier) Handles(artifactType string) bool {
	switch artifactType {
	case SignatureType, BundleV01Type, BundleV02Type, BundleV03Type:
		return true
	case AttestationType, InTotoType:
		return v.att != nil
	}
	return false
}

// Verify checks the signatures in req.Artifact against the configured trust
// as signatures (or attestations) of req.Subject. A manifest with several
// layers passes when one of them does; otherwise the reason is that of the
// signature whose check got furthest.
//
// Outcomes: Passed, with the signer in the reason and Details; Failed, with
// what failed ("no matching key", "identity mismatch (want …, got …)",
// "missing transparency-log evidence", "bad payload digest (signs …,
// subject is …)", "predicate field … is …, want …"); Skipped for
// attestations this verifier is not asked about. An error is returned when
// a layer cannot be fetched, or the manifest has more than MaxSignatures
// layers.
func (v *Verifier) Verify(ctx context.Context, req *vouch.VerifyRequest) (vouch.Result, error) {
	layers := req.Manifest.Layers
	if len(layers) == 0 {
		return vouch.Result{Outcome: vouch.Failed, Reason: "no signature: the manifest has no layers"}, nil
	}
	if len(layers) > MaxSignatures {
		return vouch.Result{}, &vouch.LimitError{Limit: "cosign-max-signatures", What: "layers of " + req.Artifact.Digest.String(), Value: int64(len(layers)), Max: MaxSignatures}
	}
	findings := make([]finding, 0, len(layers))
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			return vouch.Result{}, err
		}
		f, err := v.layer(ctx, req, i, l)
		if err != nil {
			return vouch.Result{}, err
		}
		findings = append(findings, f)
	}
	return summarize(findings), nil
}

// layer reads one layer into a candidate and checks it.
func (v *Verifier) layer(ctx context.Context, req *vouch.VerifyRequest, i int, l ocispec.Descriptor) (finding, error) {
	var (
		c   *candidate
		bad string
		err error
	)
	switch l.MediaType {
	case MediaTypeSimpleSigning:
		c, bad, err = v.readSimpleSigning(ctx, req, l)
	case MediaTypeDSSE:
		c, bad, err = v.readEnvelope(ctx, req, l)
	case BundleV01Type, BundleV02Type, BundleV03Type:
		c, bad, err = v.readBundle(ctx, req, l)
	default:
		bad = fmt.Sprintf("unexpected layer media type %q (cosign writes %s, %s or a Sigstore bundle)", l.MediaType, MediaTypeSimpleSigning, MediaTypeDSSE)
	}
	if err != nil {
		return finding{}, err
	}
	if bad != "" {
		return finding{layer: i, outcome: vouch.Failed, stage: stageRead, reason: bad}, nil
	}
	c.layer = i
	return v.check(req, c), nil
}

// fetch reads a layer after checking its declared size.
func fetch(ctx context.Context, req *vouch.VerifyRequest, l ocispec.Descriptor, max int64) ([]byte, string, error) {
	if l.Size > max {
		return nil, fmt.Sprintf("layer %s is %d bytes, over the %d this verifier reads", l.Digest, l.Size, max), nil
	}
	data, err := req.Repository.Fetch(ctx, l)
	if err != nil {
		return nil, "", fmt.Errorf("fetch layer %s: %w", l.Digest, err)
	}
	return data, "", nil
}

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

// Stages of a check, in order: how far a failed check got, to choose which
// failure among several signatures to report.
const (
	stageRead = iota
	stageSigner
	stageTlog
	stageSigstore
	stageIdentity
	stageDigest
	stageContent
	stagePassed
)

// finding is the outcome of one signature.
type finding struct {
	layer   int
	outcome vouch.Outcome
	stage   int
	reason  string
	details map[string]any
}

func failedAt(stage int, reason string) finding {
	return finding{outcome: vouch.Failed, stage: stage, reason: reason}
}

// signer is who made a signature, as found before sigstore-go checks it.
type signer struct {
	key  *trustedKey
	cert *certificate.Summary
	// fulcio says the certificate is checked against the trusted root
	// (with SCTs), not the configured roots.
	fulcio bool
	mat    *material
}

// check runs the checks on one candidate.
func (v *Verifier) check(req *vouch.VerifyRequest, c *candidate) finding {
	f := v.checkStages(req, c)
	f.layer = c.layer
	if f.details == nil {
		f.details = map[string]any{}
	}
	f.details["form"] = c.form
	if c.stmt != nil {
		f.details["predicateType"] = c.stmt.PredicateType
	}
	return f
}

func (v *Verifier) checkStages(req *vouch.VerifyRequest, c *candidate) finding {
	if c.isAttestation() {
		if v.att == nil {
			return finding{outcome: vouch.Skipped, stage: stageRead, reason: fmt.Sprintf("attestation of predicate type %s not checked: the verifier has no attestations section", c.stmt.PredicateType)}
		}
		if !v.att.accepts(c.stmt.PredicateType) {
			return finding{outcome: vouch.Skipped, stage: stageRead, reason: fmt.Sprintf("attestation predicate type %s not accepted (accepted: %s)", c.stmt.PredicateType, v.att.acceptedText())}
		}
	}
	s, f := v.findSigner(c)
	if s == nil {
		return f
	}
	if !v.ignoreTlog && len(c.entries) == 0 {
		return failedAt(stageTlog, "missing transparency-log evidence: the signature carries no Rekor entry (cosign signs without one under --tlog-upload=false; ignoreTlogUnsafe accepts that, for private setups only)")
	}
	if f, ok := v.sigstoreVerify(c, s); !ok {
		return f
	}
	if f, ok := checkSubject(req, c); !ok {
		return f
	}
	if f, ok := v.checkContent(c); !ok {
		return f
	}
	return v.passed(c, s)
}

// findSigner finds the configured key that verifies the signature, or the
// certificate and the trust it must chain to.
func (v *Verifier) findSigner(c *candidate) (*signer, finding) {
	for _, k := range v.keys {
		for _, kv := range k.verifiers {
			if c.verifyWith(kv) == nil {
				return &signer{key: k, mat: v.material(nil, k, kv)}, finding{}
			}
		}
	}
	certTrusted := len(v.roots) > 0 || v.fulcio
	switch {
	case c.cert == nil && len(v.keys) == 0:
		return nil, failedAt(stageSigner, "no matching key: the signature carries no certificate, and no keys are configured")
	case c.cert == nil:
		return nil, failedAt(stageSigner, fmt.Sprintf("no matching key: the signature does not verify with %s", v.keysText()))
	}
	sum, err := certificate.SummarizeCertificate(c.cert)
	if err != nil {
		return nil, failedAt(stageSigner, "unreadable signing certificate: "+err.Error())
	}
	who := certText(sum)
	if !certTrusted {
		return nil, failedAt(stageSigner, fmt.Sprintf("no matching key: the signature does not verify with %s, and its certificate (%s) is not trusted: no certificateRoots or keyless identities are configured", v.keysText(), who))
	}
	own, err := newTrustedKey(c.cert.PublicKey, "certificate")
	if err != nil {
		return nil, failedAt(stageSigner, "unsupported signing certificate: "+err.Error())
	}
	verified := false
	for _, kv := range own.verifiers {
		if c.verifyWith(kv) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, failedAt(stageSigner, fmt.Sprintf("bad signature: it does not verify with the key of its own certificate (%s)", who))
	}
	if len(v.roots) > 0 && chainsTo(c.cert, c.intermediates, v.roots) {
		return &signer{cert: &sum, mat: v.material(v.roots, nil, nil)}, finding{}
	}
	if v.fulcio {
		return &signer{cert: &sum, fulcio: true}, finding{}
	}
	return nil, failedAt(stageSigner, fmt.Sprintf("certificate (%s) does not chain to the configured certificateRoots", who))
}

func (v *Verifier) keysText() string {
	switch len(v.keys) {
	case 0:
		return "any key (none are configured)"
	case 1:
		return "the configured " + v.keys[0].label()
	}
	return fmt.Sprintf("any of the %d configured keys", len(v.keys))
}

func certText(s certificate.Summary) string {
	issuer := s.Issuer
	if issuer == "" {
		issuer = "(none)"
	}
	return fmt.Sprintf("subject %s, issuer %s", orNone(s.SubjectAlternativeName), issuer)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// material assembles the trust for a key or for certificates under roots:
// those, and the trusted root's transparency logs and timestamp
// authorities.
func (v *Verifier) material(roots []*x509.Certificate, k *trustedKey, kv signature.Verifier) *material {
	m := &material{key: k, keyVerifier: kv}
	for _, r := range roots {
		m.cas = append(m.cas, &root.FulcioCertificateAuthority{Root: r})
	}
	if v.trustedRoot != nil {
		m.rekor = v.trustedRoot.RekorLogs()
		m.tsas = v.trustedRoot.TimestampingAuthorities()
	}
	return m
}

// chainsTo reports whether cert chains to one of roots, at some time in its
// validity: the time that counts is checked by sigstore-go.
func chainsTo(cert *x509.Certificate, intermediates, roots []*x509.Certificate) bool {
	rp, ip := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range roots {
		rp.AddCert(r)
	}
	for _, c := range intermediates {
		ip.AddCert(c)
	}
	_, err := cert.Verify(x509.VerifyOptions{Roots: rp, Intermediates: ip, CurrentTime: cert.NotBefore, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

// sigstoreVerify runs sigstore-go's verifier with the options the signer
// and the configuration call for.
func (v *Verifier) sigstoreVerify(c *candidate, s *signer) (finding, bool) {
	var (
		opts   = []verify.VerifierOption{verify.WithoutStatementPredicate()}
		policy []verify.PolicyOption
		tm     root.TrustedMaterial
	)
	entity := verify.SignedEntity(c.entity)
	switch {
	case s.key != nil:
		tm = s.mat
		entity = withContent{SignedEntity: c.entity, vc: keyContent{}}
		if v.ignoreTlog {
			opts = append(opts, verify.WithNoObserverTimestamps())
		} else {
			// A key has no validity period: the time only serves the
			// transparency-log check, which needs none.
			opts = append(opts, verify.WithTransparencyLog(1), verify.WithCurrentTime())
		}
		policy = append(policy, verify.WithKey())
	default:
		if s.fulcio {
			tm = v.trustedRoot
		} else {
			tm = s.mat
		}
		entity = withContent{SignedEntity: c.entity, vc: certContent{leaf: c.cert, intermediates: c.intermediates}}
		switch {
		case !v.ignoreTlog:
			opts = append(opts, verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
		case len(c.timestamps) > 0 && len(tm.TimestampingAuthorities()) > 0:
			opts = append(opts, verify.WithSignedTimestamps(1))
		default:
			opts = append(opts, verify.WithCurrentTime())
		}
		if s.fulcio && !v.ignoreSCT {
			opts = append(opts, verify.WithSignedCertificateTimestamps(1))
		}
		for _, id := range v.identities {
			policy = append(policy, verify.WithCertificateIdentity(id))
		}
	}
	sv, err := verify.NewVerifier(tm, opts...)
	if err != nil {
		return failedAt(stageSigstore, "cannot set up verification: "+err.Error()), false
	}
	if _, err := sv.Verify(entity, verify.NewPolicy(c.artifact, policy...)); err != nil {
		return v.explain(err, s), false
	}
	return finding{}, true
}

// explain turns an error of sigstore-go's Verify into a reason. The
// prefixes are sigstore-go v1.3.0's (pkg/verify/signed_entity.go).
func (v *Verifier) explain(err error, s *signer) finding {
	msg := err.Error()
	cut := func(prefix string) (string, bool) {
		rest, ok := strings.CutPrefix(msg, prefix)
		return rest, ok
	}
	if rest, ok := cut("failed to verify log inclusion: "); ok {
		if strings.Contains(rest, "not enough verified log entries") {
			return failedAt(stageTlog, "transparency-log evidence does not verify: no entry from a Rekor log in the trusted root verifies ("+rest+")")
		}
		return failedAt(stageTlog, "transparency-log evidence does not verify: "+rest)
	}
	if rest, ok := cut("failed to verify timestamps: "); ok {
		return failedAt(stageSigstore, "no trusted time for the signature: "+rest)
	}
	if rest, ok := cut("failed to verify leaf certificate: "); ok {
		return failedAt(stageSigstore, fmt.Sprintf("certificate (%s) is not valid under a trusted CA at signing time: %s", certText(*s.cert), rest))
	}
	if rest, ok := cut("failed to verify signed certificate timestamp: "); ok {
		return failedAt(stageSigstore, "missing certificate-transparency evidence: the certificate has no SCT that the trusted root's CT logs verify ("+rest+"); ignoreSCTUnsafe accepts that")
	}
	if _, ok := cut("failed to verify certificate identity: "); ok {
		return failedAt(stageIdentity, fmt.Sprintf("identity mismatch (want %s, got issuer %s subject %s)", v.wantID, orNone(s.cert.Issuer), orNone(s.cert.SubjectAlternativeName)))
	}
	if rest, ok := cut("failed to verify signature: "); ok {
		return failedAt(stageSigstore, "bad signature: "+rest)
	}
	return failedAt(stageSigstore, "verification failed: "+msg)
}

// checkSubject checks that the signed payload names the subject.
func checkSubject(req *vouch.VerifyRequest, c *candidate) (finding, bool) {
	want := req.Subject.Digest.String()
	switch {
	case c.simple != nil:
		if got := c.simple.Critical.Image.DockerManifestDigest; got != want {
			return failedAt(stageDigest, fmt.Sprintf("bad payload digest (signs %s, subject is %s)", got, want)), false
		}
	case c.stmt != nil:
		if !c.stmt.names(want) {
			got := c.stmt.subjectDigests()
			if len(got) > 4 {
				got = append(got[:4], fmt.Sprintf("and %d more", len(got)-4))
			}
			signs := strings.Join(got, ", ")
			if signs == "" {
				signs = "no subject"
			}
			return failedAt(stageDigest, fmt.Sprintf("bad payload digest (signs %s, subject is %s)", signs, want)), false
		}
	default:
		if got := "sha256:" + hex.EncodeToString(c.msgDigest); got != want {
			return failedAt(stageDigest, fmt.Sprintf("bad payload digest (signs %s, subject is %s)", got, want)), false
		}
	}
	return finding{}, true
}

// checkContent checks annotations of signatures and predicates of
// attestations.
func (v *Verifier) checkContent(c *candidate) (finding, bool) {
	if c.isAttestation() {
		if reason := v.att.check(c.stmt); reason != "" {
			return failedAt(stageContent, reason), false
		}
		return finding{}, true
	}
	for _, k := range sortedKeys(v.annotations) {
		want := v.annotations[k]
		if c.simple == nil {
			return failedAt(stageContent, fmt.Sprintf("annotation %s is missing, want %s: a Sigstore-bundle signature carries no annotations", k, want)), false
		}
		got, ok := c.simple.Optional[k]
		if !ok {
			return failedAt(stageContent, fmt.Sprintf("annotation %s is missing, want %s", k, want)), false
		}
		if text := annotationText(got); text != want {
			return failedAt(stageContent, fmt.Sprintf("annotation %s is %s, want %s", k, text, want)), false
		}
	}
	return finding{}, true
}

// passed describes a verified signature.
func (v *Verifier) passed(c *candidate, s *signer) finding {
	d := map[string]any{}
	var by string
	if s.key != nil {
		by = "key " + s.key.name + " (" + s.key.fingerprint + ")"
		d["key"], d["keyFingerprint"] = s.key.name, s.key.fingerprint
	} else {
		by = s.cert.SubjectAlternativeName + " (issuer " + orNone(s.cert.Issuer) + ")"
		d["subject"], d["issuer"], d["certificateIssuer"] = s.cert.SubjectAlternativeName, s.cert.Issuer, s.cert.CertificateIssuer
		if s.fulcio {
			d["trust"] = "trustedRoot"
		} else {
			d["trust"] = "certificateRoots"
		}
	}
	var logged string
	if v.ignoreTlog {
		logged = "transparency log not checked (ignoreTlogUnsafe)"
		d["tlog"] = "not checked"
	} else {
		e := c.entries[0]
		logged = fmt.Sprintf("in Rekor at log index %d", e.LogIndex())
		t := map[string]any{"logIndex": e.LogIndex()}
		if it := e.IntegratedTime(); !it.IsZero() {
			t["integratedTime"] = it.UTC().Format(time.RFC3339)
		}
		d["tlog"] = t
	}
	reason := "signed by " + by + "; " + logged
	switch {
	case c.isAttestation():
		reason = fmt.Sprintf("attestation %s signed by %s; %s", c.stmt.PredicateType, by, logged)
		if len(c.stmtBytes) > MaxStatementDetailBytes {
			d["statementOmitted"] = fmt.Sprintf("the statement is %d bytes, over the %d kept in reports", len(c.stmtBytes), MaxStatementDetailBytes)
		} else {
			var st any
			if err := json.Unmarshal(c.stmtBytes, &st); err == nil {
				d["statement"] = st
			}
		}
	case c.simple != nil:
		d["payloadDigest"] = c.simple.Critical.Image.DockerManifestDigest
		if ref := c.simple.Critical.Identity.DockerReference; ref != "" {
			d["dockerReference"] = ref
		}
		if len(c.simple.Optional) > 0 {
			d["annotations"] = c.simple.Optional
		}
	}
	return finding{outcome: vouch.Passed, stage: stagePassed, reason: reason, details: d}
}

// summarize turns the findings on a manifest's signatures into its result.
func summarize(fs []finding) vouch.Result {
	var best *finding
	var failed, skipped []finding
	for i := range fs {
		f := &fs[i]
		switch f.outcome {
		case vouch.Passed:
			if best == nil || best.outcome != vouch.Passed {
				best = f
			}
		case vouch.Failed:
			failed = append(failed, *f)
			if best == nil || (best.outcome == vouch.Failed && f.stage > best.stage) || best.outcome == vouch.Skipped {
				best = f
			}
		case vouch.Skipped:
			skipped = append(skipped, *f)
			if best == nil {
				best = f
			}
		}
	}
	r := vouch.Result{Outcome: best.outcome, Reason: best.reason, Details: best.details}
	if r.Details == nil {
		r.Details = map[string]any{}
	}
	r.Details["signatures"] = len(fs)
	if len(fs) > 1 {
		r.Details["layer"] = best.layer
		switch {
		case best.outcome == vouch.Passed:
			r.Reason += fmt.Sprintf(" (signature %d of %d)", best.layer+1, len(fs))
		case best.outcome == vouch.Failed && len(failed) > 1:
			r.Reason += fmt.Sprintf(" (and %d other signatures failed)", len(failed)-1)
		case best.outcome == vouch.Skipped && len(skipped) > 1:
			r.Reason += fmt.Sprintf(" (and %d other attestations skipped)", len(skipped)-1)
		}
	}
	if best.outcome == vouch.Failed && len(failed) > 1 {
		var reasons []string
		for _, f := range failed {
			if len(reasons) == 10 {
				break
			}
			reasons = append(reasons, f.reason)
		}
		r.Details["failures"] = reasons
	}
	return r
}

// attestationPolicy is Attestations, compiled.
type attestationPolicy struct {
	types   map[string]bool
	common  []fieldCheck
	perType map[string][]fieldCheck
}

type fieldCheck struct {
	path, want string
	re         *regexp.Regexp
}

func newAttestationPolicy(a *Attestations) (*attestationPolicy, error) {
	p := &attestationPolicy{types: map[string]bool{}, perType: map[string][]fieldCheck{}}
	for _, t := range a.PredicateTypes {
		uri, err := PredicateType(t)
		if err != nil {
			return nil, err
		}
		p.types[uri] = true
	}
	var err error
	if p.common, err = compileFields(a.Fields, a.FieldsRegExp); err != nil {
		return nil, err
	}
	for _, pr := range a.Predicates {
		uri, err := PredicateType(pr.Type)
		if err != nil {
			return nil, err
		}
		p.types[uri] = true
		if p.perType[uri], err = compileFields(pr.Fields, pr.FieldsRegExp); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func compileFields(exact, re map[string]string) ([]fieldCheck, error) {
	var out []fieldCheck
	for _, k := range sortedKeys(exact) {
		out = append(out, fieldCheck{path: k, want: exact[k]})
	}
	for _, k := range sortedKeys(re) {
		r, err := regexp.Compile(re[k])
		if err != nil {
			return nil, err
		}
		out = append(out, fieldCheck{path: k, re: r})
	}
	return out, nil
}

func (p *attestationPolicy) accepts(t string) bool { return len(p.types) == 0 || p.types[t] }

func (p *attestationPolicy) acceptedText() string { return strings.Join(sortedKeys(p.types), ", ") }

// check returns why the statement's predicate fails the field checks, or "".
func (p *attestationPolicy) check(s *statement) string {
	for _, fc := range append(append([]fieldCheck(nil), p.common...), p.perType[s.PredicateType]...) {
		want := fc.want
		if fc.re != nil {
			want = "a match for " + fc.re.String()
		}
		got, err := lookup(s.Predicate, fc.path)
		if err != nil {
			return fmt.Sprintf("predicate field %s is %v, want %s", fc.path, err, want)
		}
		if (fc.re == nil && got != fc.want) || (fc.re != nil && !fc.re.MatchString(got)) {
			return fmt.Sprintf("predicate field %s is %s, want %s", fc.path, got, want)
		}
	}
	return ""
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
