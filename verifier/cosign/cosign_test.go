package cosign_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"oras.land/oras-go/v2/content"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/cosign"
)

// allow is a policy that allows everything: the tests read the results.
var allow = vouch.PolicyFunc(func(context.Context, vouch.Reference, *vouch.Node) (vouch.Decision, error) {
	return vouch.Decision{Verdict: vouch.Allowed, Reason: "test"}, nil
})

// Identities of the test signers.
const (
	issuer       = "https://issuer.test"
	alice        = "alice@example.com"
	virtualIssue = "https://virtual.issuer"
	dave         = "dave@virtual.test"
	carol        = "carol@example.com"
)

// fixture is the trust material and signers the cases share.
type fixture struct {
	dir                     string
	ecdsaKey, rsaKey, edKey *keyPair
	otherKey                *keyPair
	sigstore                *fakeSigstore
	alice                   *certKey
	aliceNoLog              *certKey
	// carol has a certificate from an enterprise CA (no Fulcio extensions).
	carol, carolExpired *certKey
	enterprise          *x509.Certificate
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{
		dir:      dir,
		ecdsaKey: newKey(t, dir, "ecdsa", "ecdsa"),
		rsaKey:   newKey(t, dir, "rsa", "rsa"),
		edKey:    newKey(t, dir, "ed25519", "ed25519"),
		otherKey: newKey(t, dir, "other", "ecdsa"),
		sigstore: newFakeSigstore(t, dir),
	}
	f.alice = f.sigstore.issue(t, issuer, alice, true)
	f.aliceNoLog = f.sigstore.issue(t, issuer, alice, true)
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		t.Fatal(err)
	}
	f.enterprise = rootCert
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := createCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "carol"}, EmailAddresses: []string{carol},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}, rootCert, key.Public(), rootKey)
	f.carol = &certKey{key: key, leaf: leaf, chain: []*x509.Certificate{rootCert}}
	expired := createCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(8), Subject: pkix.Name{CommonName: "carol"}, EmailAddresses: []string{carol},
		NotBefore: time.Now().Add(-3 * time.Hour), NotAfter: time.Now().Add(-2 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}, rootCert, key.Public(), rootKey)
	f.carolExpired = &certKey{key: key, leaf: expired, chain: []*x509.Certificate{rootCert}}
	return f
}

// verifiers are the configurations the cases are checked against, all at
// once: each case names what each verifier must find.
func (f *fixture) verifiers(t *testing.T) []vouch.Verifier {
	t.Helper()
	slsa := &cosign.Attestations{
		PredicateTypes: []string{"spdxjson"},
		Predicates: []cosign.Predicate{{
			Type:         "slsaprovenance",
			Fields:       map[string]string{"builder.id": "https://builder.test/v1"},
			FieldsRegExp: map[string]string{"invocation.configSource.uri": `^git\+https://github\.com/acme/`},
		}},
	}
	keys := cosign.PEMSource{Files: []string{"ecdsa.pub", "rsa.pub"}, PEM: string(f.edKey.pubPEM)}
	configs := map[string]cosign.Config{
		"keys":          {Keys: keys, IgnoreTlogUnsafe: true, Attestations: slsa},
		"keys-tlog":     {Keys: cosign.PEMSource{Files: []string{"ecdsa.pub"}}, TrustedRoot: "trusted_root.json"},
		"annotated":     {Keys: cosign.PEMSource{Files: []string{f.ecdsaKey.pubFile}}, IgnoreTlogUnsafe: true, Annotations: map[string]string{"team": "blue"}},
		"annotated-red": {Keys: cosign.PEMSource{Files: []string{f.ecdsaKey.pubFile}}, IgnoreTlogUnsafe: true, Annotations: map[string]string{"team": "red"}},
		"keyless": {
			TrustedRoot:  f.sigstore.trustedRoot,
			Identities:   []cosign.Identity{{Issuer: issuer, Subject: alice}},
			Attestations: &cosign.Attestations{PredicateTypes: []string{cosign.PredicateSLSAv1}},
		},
		"keyless-other": {
			TrustedRoot: f.sigstore.trustedRoot,
			Identities:  []cosign.Identity{{IssuerRegExp: `^https://other\.test$`, Subject: "bob@example.com"}},
		},
		"keyless-nosct": {
			TrustedRoot:     f.sigstore.trustedRoot,
			Identities:      []cosign.Identity{{Issuer: virtualIssue, SubjectRegExp: `@virtual\.test$`}},
			IgnoreSCTUnsafe: true,
		},
		"roots": {
			CertificateRoots: cosign.PEMSource{PEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.enterprise.Raw}))},
			Identities:       []cosign.Identity{{IssuerRegExp: ".*", Subject: carol}},
			IgnoreTlogUnsafe: true,
		},
	}
	var out []vouch.Verifier
	for _, name := range []string{"keys", "keys-tlog", "annotated", "annotated-red", "keyless", "keyless-other", "keyless-nosct", "roots"} {
		v, err := cosign.New(name, inDir(f.dir, configs[name]))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, v)
	}
	return out
}

// want is what one verifier must find on a case's signature node.
type want struct {
	outcome vouch.Outcome
	reason  string // a substring of the reason
	details map[string]any
}

// verifyCase pushes artifacts for a fresh image and says what each
// verifier must find on the one signature node they make.
type verifyCase struct {
	name string
	// push attaches the case's artifacts to img, whose manifest is
	// manifest.
	push pushFunc
	// node is the artifact type of the node the wants are for.
	node string
	want map[string]want
}

type (
	pushFunc  func(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor, manifest []byte)
	layerFunc func(t *testing.T, img ocispec.Descriptor) layer
)

func (f *fixture) cases() []verifyCase {
	s := f.sigstore
	other := digest.FromString("another image")
	slsa02 := func(builder string) map[string]any {
		return map[string]any{
			"builder":    map[string]any{"id": builder},
			"buildType":  "https://example.com/build",
			"invocation": map[string]any{"configSource": map[string]any{"uri": "git+https://github.com/acme/app@refs/heads/main"}},
		}
	}
	spdx := map[string]any{"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "app"}
	sigTag := func(layers ...layerFunc) pushFunc {
		return func(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor, _ []byte) {
			ls := make([]layer, len(layers))
			for i, l := range layers {
				ls[i] = l(t, img)
			}
			pushTagLayout(t, p, img, ".sig", ls...)
		}
	}
	attTag := func(l layerFunc) pushFunc {
		return func(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor, _ []byte) {
			pushTagLayout(t, p, img, ".att", l(t, img))
		}
	}
	keySig := func(k *keyPair, opt map[string]any) layerFunc {
		return func(t *testing.T, img ocispec.Descriptor) layer {
			return keySigned(t, k, simpleSigning(t, "registry.test/app", img.Digest, opt))
		}
	}
	noMatch := want{vouch.Failed, "no matching key", nil}
	return []verifyCase{{
		name: "ECDSA key, tag layout",
		push: sigTag(keySig(f.ecdsaKey, nil)),
		node: cosign.SignatureType,
		want: map[string]want{
			"keys":          {vouch.Passed, "signed by key ecdsa.pub (SHA256:", map[string]any{"key": "ecdsa.pub", "tlog": "not checked", "form": "simple-signing"}},
			"keys-tlog":     {vouch.Failed, "missing transparency-log evidence", nil},
			"annotated":     {vouch.Failed, "annotation team is missing, want blue", nil},
			"keyless":       {vouch.Failed, "no matching key: the signature carries no certificate, and no keys are configured", nil},
			"keyless-other": noMatch,
			"roots":         noMatch,
		},
	}, {
		name: "RSA key",
		push: sigTag(keySig(f.rsaKey, nil)),
		node: cosign.SignatureType,
		want: map[string]want{"keys": {vouch.Passed, "signed by key rsa.pub", nil}},
	}, {
		name: "Ed25519 key inline",
		push: sigTag(keySig(f.edKey, nil)),
		node: cosign.SignatureType,
		want: map[string]want{"keys": {vouch.Passed, "signed by key cosign.keys.pem[0]", nil}},
	}, {
		name: "wrong key",
		push: sigTag(keySig(f.otherKey, nil)),
		node: cosign.SignatureType,
		want: map[string]want{
			"keys":      {vouch.Failed, "no matching key: the signature does not verify with any of the 3 configured keys", nil},
			"annotated": {vouch.Failed, "no matching key: the signature does not verify with the configured key " + f.ecdsaKey.pubFile, nil},
		},
	}, {
		name: "payload names another image",
		push: sigTag(func(t *testing.T, _ ocispec.Descriptor) layer {
			return keySigned(t, f.ecdsaKey, simpleSigning(t, "registry.test/app", other, nil))
		}),
		node: cosign.SignatureType,
		want: map[string]want{"keys": {vouch.Failed, "bad payload digest (signs " + other.String() + ", subject is sha256:", nil}},
	}, {
		name: "annotations",
		push: sigTag(keySig(f.ecdsaKey, map[string]any{"team": "blue"})),
		node: cosign.SignatureType,
		want: map[string]want{
			"annotated":     {vouch.Passed, "signed by key", nil},
			"annotated-red": {vouch.Failed, "annotation team is blue, want red", nil},
		},
	}, {
		name: "ECDSA key logged in Rekor",
		push: sigTag(func(t *testing.T, img ocispec.Descriptor) layer {
			payload := simpleSigning(t, "registry.test/app", img.Digest, nil)
			l := keySigned(t, f.ecdsaKey, payload)
			sig, _ := base64.StdEncoding.DecodeString(l.annotations[cosign.AnnotationSignature])
			l.annotations[cosign.AnnotationBundle] = rekorBundleAnnotation(t, s.logEntry(t, "hashedrekord", hashedRekordBody(t, payload, sig, f.ecdsaKey.pubPEM), false))
			return l
		}),
		node: cosign.SignatureType,
		want: map[string]want{
			"keys-tlog": {vouch.Passed, "signed by key ecdsa.pub", nil},
			"keys":      {vouch.Passed, "; transparency log not checked (ignoreTlogUnsafe)", nil},
		},
	}, {
		name: "two signatures, the second good",
		push: sigTag(keySig(f.otherKey, nil), keySig(f.ecdsaKey, nil)),
		node: cosign.SignatureType,
		want: map[string]want{
			"keys":      {vouch.Passed, "(signature 2 of 2)", map[string]any{"signatures": 2, "layer": 1}},
			"keys-tlog": {vouch.Failed, "missing transparency-log evidence: the signature carries no Rekor entry (cosign signs without one under --tlog-upload=false; ignoreTlogUnsafe accepts that, for private setups only) (and 1 other signatures failed)", nil},
		},
	}, {
		name: "layer without signature",
		push: sigTag(func(t *testing.T, img ocispec.Descriptor) layer {
			return layer{cosign.MediaTypeSimpleSigning, simpleSigning(t, "registry.test/app", img.Digest, nil), nil}
		}),
		node: cosign.SignatureType,
		want: map[string]want{"keys": {vouch.Failed, "no signature: the layer has no dev.cosignproject.cosign/signature annotation", nil}},
	}, {
		name: "keyless, tag layout",
		push: sigTag(func(t *testing.T, img ocispec.Descriptor) layer {
			return s.keylessSigned(t, f.alice, simpleSigning(t, "registry.test/app", img.Digest, nil))
		}),
		node: cosign.SignatureType,
		want: map[string]want{
			"keyless":       {vouch.Passed, "signed by alice@example.com (issuer https://issuer.test); in Rekor at log index 0", map[string]any{"subject": alice, "issuer": issuer, "trust": "trustedRoot"}},
			"keyless-other": {vouch.Failed, `identity mismatch (want issuer matching ^https://other\.test$ subject bob@example.com, got issuer https://issuer.test subject alice@example.com)`, nil},
			"keys":          {vouch.Failed, "no matching key: the signature does not verify with any of the 3 configured keys, and its certificate (subject alice@example.com, issuer https://issuer.test) is not trusted", nil},
			"roots":         {vouch.Failed, "does not chain to the configured certificateRoots", nil},
		},
	}, {
		name: "keyless, with the Rekor entry of another signature",
		push: sigTag(func(t *testing.T, img ocispec.Descriptor) layer {
			l := s.keylessSigned(t, f.alice, simpleSigning(t, "registry.test/app", img.Digest, nil))
			l.annotations[cosign.AnnotationBundle] = s.keylessSigned(t, f.alice, simpleSigning(t, "registry.test/app", other, nil)).annotations[cosign.AnnotationBundle]
			return l
		}),
		node: cosign.SignatureType,
		want: map[string]want{"keyless": {vouch.Failed, "transparency-log evidence does not verify: transparency log signature does not match", nil}},
	}, {
		name: "keyless, signature not made by the certificate's key",
		push: sigTag(func(t *testing.T, img ocispec.Descriptor) layer {
			payload := simpleSigning(t, "registry.test/app", img.Digest, nil)
			l := s.keylessSigned(t, f.alice, payload)
			l.annotations[cosign.AnnotationSignature] = keySigned(t, f.otherKey, payload).annotations[cosign.AnnotationSignature]
			return l
		}),
		node: cosign.SignatureType,
		want: map[string]want{"keyless": {vouch.Failed, "bad signature: it does not verify with the key of its own certificate (subject alice@example.com, issuer https://issuer.test)", nil}},
	}, {
		name: "junk layers",
		push: func(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor, _ []byte) {
			pushTagLayout(t, p, img, ".sig",
				layer{cosign.MediaTypeSimpleSigning, []byte(`{"critical":{}}`), map[string]string{cosign.AnnotationSignature: "c2ln"}},
				layer{"application/octet-stream", []byte("junk"), nil},
				layer{cosign.BundleV03Type, []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`), nil},
				layer{cosign.MediaTypeSimpleSigning, simpleSigning(t, "registry.test/app", img.Digest, nil), map[string]string{cosign.AnnotationSignature: "c2ln", cosign.AnnotationBundle: "{"}},
			)
		},
		node: cosign.SignatureType,
		want: map[string]want{"keys": {vouch.Failed, "malformed signature: simple-signing payload names no critical.image.docker-manifest-digest (and 3 other signatures failed)", map[string]any{"failures": []string{
			"malformed signature: simple-signing payload names no critical.image.docker-manifest-digest",
			`unexpected layer media type "application/octet-stream" (cosign writes application/vnd.dev.cosign.simplesigning.v1+json, application/vnd.dsse.envelope.v1+json or a Sigstore bundle)`,
			"malformed Sigstore bundle: invalid bundle: validation error: missing bundle content",
			"malformed dev.sigstore.cosign/bundle annotation: rekor bundle: unexpected end of JSON input",
		}}}},
	}, {
		name: "ECDSA key, OCI 1.1 referrer (cosign --registry-referrers-mode=oci-1-1)",
		push: func(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor, _ []byte) {
			pushSignatureReferrer(t, p, img, keySig(f.ecdsaKey, nil)(t, img))
		},
		node: cosign.SignatureType,
		want: map[string]want{"keys": {vouch.Passed, "signed by key ecdsa.pub", nil}},
	}, {
		name: "keyless Sigstore bundle",
		push: func(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor, _ []byte) {
			b := s.dsseBundle(t, statement(t, cosign.PredicateCosignSign, img.Digest, nil), bundleOptions{cert: f.alice, tlog: true})
			pushBundle(t, p, img, cosign.BundleV03Type, cosign.PredicateCosignSign, b)
		},
		node: cosign.BundleV03Type,
		want: map[string]want{
			"keyless":       {vouch.Passed, "signed by alice@example.com (issuer https://issuer.test); in Rekor at log index 0", map[string]any{"form": "bundle"}},
			"keyless-other": {vouch.Failed, "identity mismatch (want issuer matching ^https://other\\.test$ subject bob@example.com, got issuer https://issuer.test subject alice@example.com)", nil},
		},
	}, {
		name: "keyless Sigstore bundle without transparency-log evidence",
		push: func(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor, _ []byte) {
			b := s.dsseBundle(t, statement(t, cosign.PredicateCosignSign, img.Digest, nil), bundleOptions{cert: f.aliceNoLog})
			pushBundle(t, p, img, cosign.BundleV03Type, cosign.PredicateCosignSign, b)
		},
		node: cosign.BundleV03Type,
		want: map[string]want{"keyless": {vouch.Failed, "missing transparency-log evidence", nil}},
	}, {
		name: "key-signed Sigstore bundle",
		push: func(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor, _ []byte) {
			b := s.dsseBundle(t, statement(t, cosign.PredicateCosignSign, img.Digest, nil), bundleOptions{key: f.ecdsaKey})
			pushBundle(t, p, img, cosign.BundleV03Type, cosign.PredicateCosignSign, b)
		},
		node: cosign.BundleV03Type,
		want: map[string]want{
			"keys":      {vouch.Passed, "signed by key ecdsa.pub", nil},
			"annotated": {vouch.Failed, "annotation team is missing, want blue: a Sigstore-bundle signature carries no annotations", nil},
		},
	}, {
		name: "VirtualSigstore bundle, certificate without SCT",
		push: func(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor, manifest []byte) {
			pushBundle(t, p, img, cosign.BundleV01Type, "", s.virtualBundle(t, dave, virtualIssue, manifest))
		},
		node: cosign.BundleV01Type,
		want: map[string]want{
			"keyless-nosct": {vouch.Passed, "signed by dave@virtual.test (issuer https://virtual.issuer); in Rekor", nil},
			"keyless":       {vouch.Failed, "missing certificate-transparency evidence", nil},
		},
	}, {
		name: "certificate from configured roots",
		push: sigTag(func(t *testing.T, img ocispec.Descriptor) layer {
			payload := simpleSigning(t, "registry.test/app", img.Digest, nil)
			l := keySigned(t, &keyPair{signer: f.carol.key}, payload)
			l.annotations[cosign.AnnotationCertificate] = string(f.carol.pem())
			l.annotations[cosign.AnnotationChain] = string(f.carol.chainPEM())
			return l
		}),
		node: cosign.SignatureType,
		want: map[string]want{
			"roots": {vouch.Passed, "signed by carol@example.com (issuer (none)); transparency log not checked", map[string]any{"trust": "certificateRoots"}},
		},
	}, {
		name: "expired certificate, no transparency log",
		push: sigTag(func(t *testing.T, img ocispec.Descriptor) layer {
			payload := simpleSigning(t, "registry.test/app", img.Digest, nil)
			l := keySigned(t, &keyPair{signer: f.carolExpired.key}, payload)
			l.annotations[cosign.AnnotationCertificate] = string(f.carolExpired.pem())
			return l
		}),
		node: cosign.SignatureType,
		want: map[string]want{
			"roots": {vouch.Failed, "certificate (subject carol@example.com, issuer (none)) does not chain to a trusted CA now (no transparency-log entry or timestamp says when it signed): leaf certificate verification failed", nil},
		},
	}, {
		name: "SPDX attestation, tag layout",
		push: attTag(func(t *testing.T, img ocispec.Descriptor) layer {
			return keyAttested(t, f.ecdsaKey, cosign.PredicateSPDX, statement(t, cosign.PredicateSPDX, img.Digest, spdx))
		}),
		node: cosign.AttestationType,
		want: map[string]want{
			"keys":    {vouch.Passed, "attestation https://spdx.dev/Document signed by key ecdsa.pub", map[string]any{"predicateType": cosign.PredicateSPDX, "form": "dsse"}},
			"keyless": {vouch.Skipped, "attestation predicate type https://spdx.dev/Document not accepted (accepted: https://slsa.dev/provenance/v1)", nil},
		},
	}, {
		name: "SLSA v0.2 provenance with the right builder",
		push: attTag(func(t *testing.T, img ocispec.Descriptor) layer {
			return keyAttested(t, f.ecdsaKey, cosign.PredicateSLSAv02, statement(t, cosign.PredicateSLSAv02, img.Digest, slsa02("https://builder.test/v1")))
		}),
		node: cosign.AttestationType,
		want: map[string]want{"keys": {vouch.Passed, "attestation https://slsa.dev/provenance/v0.2 signed by key ecdsa.pub", nil}},
	}, {
		name: "SLSA v0.2 provenance from another builder",
		push: attTag(func(t *testing.T, img ocispec.Descriptor) layer {
			return keyAttested(t, f.ecdsaKey, cosign.PredicateSLSAv02, statement(t, cosign.PredicateSLSAv02, img.Digest, slsa02("https://evil.test")))
		}),
		node: cosign.AttestationType,
		want: map[string]want{"keys": {vouch.Failed, "predicate field builder.id is https://evil.test, want https://builder.test/v1", nil}},
	}, {
		name: "attestation about another image",
		push: attTag(func(t *testing.T, _ ocispec.Descriptor) layer {
			return keyAttested(t, f.ecdsaKey, cosign.PredicateSPDX, statement(t, cosign.PredicateSPDX, other, spdx))
		}),
		node: cosign.AttestationType,
		want: map[string]want{"keys": {vouch.Failed, "bad payload digest (signs " + other.String() + ", subject is sha256:", nil}},
	}, {
		name: "attestation, OCI 1.1 referrer (application/vnd.in-toto+json)",
		push: func(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor, _ []byte) {
			l := keyAttested(t, f.ecdsaKey, cosign.PredicateSPDX, statement(t, cosign.PredicateSPDX, img.Digest, spdx))
			pushReferrer(t, p, img, cosign.InTotoType, nil, l)
		},
		node: cosign.InTotoType,
		want: map[string]want{"keys": {vouch.Passed, "attestation https://spdx.dev/Document signed by key ecdsa.pub", nil}},
	}, {
		name: "keyless SLSA v1 attestation bundle",
		push: func(t *testing.T, p *testbed.Pusher, img ocispec.Descriptor, _ []byte) {
			pred := map[string]any{"buildDefinition": map[string]any{"buildType": "https://example.com/build"}, "runDetails": map[string]any{"builder": map[string]any{"id": "https://builder.test/v1"}}}
			b := s.dsseBundle(t, statement(t, cosign.PredicateSLSAv1, img.Digest, pred), bundleOptions{cert: f.alice, tlog: true})
			pushBundle(t, p, img, cosign.BundleV03Type, cosign.PredicateSLSAv1, b)
		},
		node: cosign.BundleV03Type,
		want: map[string]want{
			"keyless": {vouch.Passed, "attestation https://slsa.dev/provenance/v1 signed by alice@example.com (issuer https://issuer.test); in Rekor at log index 0", nil},
			"keys":    {vouch.Skipped, "attestation predicate type https://slsa.dev/provenance/v1 not accepted (accepted: https://slsa.dev/provenance/v0.2, https://spdx.dev/Document)", nil},
			"roots":   {vouch.Skipped, "attestation of predicate type https://slsa.dev/provenance/v1 not checked: the verifier has no attestations section", nil},
		},
	}, {
		name: "unsigned",
		push: func(*testing.T, *testbed.Pusher, ocispec.Descriptor, []byte) {},
	}}
}

func TestVerifier(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	verifiers := f.verifiers(t)
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	exec := &vouch.Executor{Store: store, Verifiers: verifiers, Policy: allow, Discovery: vouch.Discovery{CosignTags: true}}
	cases := f.cases()
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					p := testbed.NewPusher(t, reg.Host, fmt.Sprintf("cosign/case%d", i))
					img := p.Image("", reg.Name+" "+c.name)
					manifest, err := content.FetchAll(ctx, p.Repo, img)
					if err != nil {
						t.Fatal(err)
					}
					c.push(t, p, img, manifest)
					ref, err := vouch.ParseReference(reg.Host + fmt.Sprintf("/cosign/case%d@", i) + img.Digest.String())
					if err != nil {
						t.Fatal(err)
					}
					report, err := exec.Verify(ctx, ref)
					if err != nil {
						t.Fatal(err)
					}
					checkNode(t, report.Root, c.node, c.want)
				})
			}
		})
	}
}

// checkNode finds the one referrer of root of type nodeType and checks the
// results of the verifiers named in wants; with no nodeType, root must
// have no referrers.
func checkNode(t *testing.T, root *vouch.Node, nodeType string, wants map[string]want) {
	t.Helper()
	if nodeType == "" {
		if len(root.Referrers) != 0 {
			t.Fatalf("want no referrers, got %d", len(root.Referrers))
		}
		return
	}
	if len(root.Referrers) != 1 {
		for _, n := range root.Referrers {
			t.Logf("referrer %s %s (%s)", n.ArtifactType, n.Digest, n.Source)
		}
		t.Fatalf("want 1 referrer, got %d", len(root.Referrers))
	}
	n := root.Referrers[0]
	if n.ArtifactType != nodeType {
		t.Fatalf("referrer type %q, want %q", n.ArtifactType, nodeType)
	}
	got := map[string]vouch.Result{}
	for _, r := range n.Results {
		got[r.Verifier] = r
		t.Logf("%s: %s: %s", r.Verifier, r.Outcome, r.Reason)
	}
	for name, w := range wants {
		r, ok := got[name]
		if !ok {
			t.Errorf("%s: no result", name)
			continue
		}
		if r.Outcome != w.outcome || !strings.Contains(r.Reason, w.reason) {
			t.Errorf("%s: got %s %q, want %s containing %q", name, r.Outcome, r.Reason, w.outcome, w.reason)
		}
		if r.Outcome == vouch.Passed && strings.HasPrefix(r.Reason, "attestation ") {
			st, ok := r.Details["statement"].(map[string]any)
			if !ok || st["predicateType"] == nil || st["subject"] == nil {
				t.Errorf("%s: Details[statement] = %v, want the in-toto statement", name, r.Details["statement"])
			}
		}
		for k, v := range w.details {
			if fmt.Sprint(r.Details[k]) != fmt.Sprint(v) {
				t.Errorf("%s: Details[%q] = %v, want %v", name, k, r.Details[k], v)
			}
		}
	}
}
