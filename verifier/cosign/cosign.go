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
	"context"
	"crypto/x509"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/trust"
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
	BundleV03Type = vouch.SigstoreBundleType
)

// Layer media types.
const (
	// MediaTypeSimpleSigning is a signature layer: a simple-signing payload.
	MediaTypeSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	// MediaTypeDSSE is an attestation layer: a DSSE envelope.
	MediaTypeDSSE = "application/vnd.dsse.envelope.v1+json"
	// MediaTypeInToto is an unsigned in-toto statement: the layers of
	// BuildKit's attestation manifests.
	MediaTypeInToto = "application/vnd.in-toto+json"
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
	fulcio     bool
	identities verify.CertificateIdentities
	// extensions says whether some identity matches Fulcio extensions.
	extensions  bool
	wantID      string
	ignoreTlog  bool
	ignoreSCT   bool
	annotations map[string]string
	att         *attestationPolicy
}

// New builds the verifier named name (DefaultName when empty) from c,
// reading the key, certificate and trusted-root files it names once, at the
// paths as given (vouch's config package resolves relative paths against
// the config file's folder first). Build a new Verifier to pick up changed
// files.
func New(name string, c Config) (*Verifier, error) {
	const prefix = "cosign"
	if err := c.Validate(prefix); err != nil {
		return nil, err
	}
	if name == "" {
		name = DefaultName
	}
	v := &Verifier{name: name, ignoreTlog: c.IgnoreTlogUnsafe, ignoreSCT: c.IgnoreSCTUnsafe, annotations: c.Annotations}
	var err error
	if v.keys, err = loadKeys(c.Keys, prefix+".keys"); err != nil {
		return nil, err
	}
	if v.roots, err = loadCertificates(c.CertificateRoots, prefix+".certificateRoots"); err != nil {
		return nil, err
	}
	switch {
	case len(c.TrustedRootJSON) > 0:
		if v.trustedRoot, err = root.NewTrustedRootFromJSON(c.TrustedRootJSON); err != nil {
			return nil, fmt.Errorf("%s.trustedRootRef: %w", prefix, err)
		}
		v.fulcio = len(c.Identities) > 0
	case c.TrustedRootRef != nil:
		return nil, fmt.Errorf("%s.trustedRootRef: %w", prefix, trust.ErrNoResolver)
	case c.TrustedRoot != "":
		if v.trustedRoot, err = loadTrustedRoot(c.TrustedRoot); err != nil {
			return nil, fmt.Errorf("%s.trustedRoot: %w", prefix, err)
		}
		v.fulcio = len(c.Identities) > 0
	}
	var want []string
	for i, id := range c.Identities {
		san, err := verify.NewSANMatcher(id.Subject, id.SubjectRegExp)
		if err != nil {
			return nil, fmt.Errorf("%s.identities[%d]: %w", prefix, i, err)
		}
		iss, err := verify.NewIssuerMatcher(id.Issuer, id.IssuerRegExp)
		if err != nil {
			return nil, fmt.Errorf("%s.identities[%d]: %w", prefix, i, err)
		}
		ci, err := verify.NewCertificateIdentity(san, iss, id.extensions())
		if err != nil {
			return nil, fmt.Errorf("%s.identities[%d]: %w", prefix, i, err)
		}
		v.identities = append(v.identities, ci)
		v.extensions = v.extensions || extensionsText(id.extensions()) != ""
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
	return part("issuer", id.Issuer, id.IssuerRegExp) + " " + part("subject", id.Subject, id.SubjectRegExp) + extensionsText(id.extensions())
}

// extensionsText lists the Fulcio extensions that identities match, as
// " name value" pairs, or "".
func extensionsText(e certificate.Extensions) string {
	var b strings.Builder
	for _, x := range []struct{ name, value string }{
		{"source repository", e.SourceRepositoryURI}, {"source ref", e.SourceRepositoryRef},
		{"runner environment", e.RunnerEnvironment}, {"build signer", e.BuildSignerURI},
	} {
		if x.value != "" {
			b.WriteString(" " + x.name + " " + x.value)
		}
	}
	return b.String()
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
	case AttestationType, InTotoType, vouch.BuildKitAttestationType:
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
		return vouch.Fail("no signature: the manifest has no layers", nil), nil
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
	case MediaTypeInToto:
		c, bad, err = readStatement(ctx, req, l)
	default:
		bad = fmt.Sprintf("unexpected layer media type %q (cosign writes %s, %s or a Sigstore bundle)", l.MediaType, MediaTypeSimpleSigning, MediaTypeDSSE)
	}
	if err != nil {
		return finding{}, err
	}
	if bad != "" {
		f := finding{layer: i, outcome: vouch.Failed, stage: stageRead, reason: bad}
		if l.MediaType == MediaTypeSimpleSigning {
			f.kind = vouch.ClaimSignature
		}
		return f, nil
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
