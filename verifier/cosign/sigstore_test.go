package cosign_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509util "github.com/google/certificate-transparency-go/x509util"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/verifier/cosign"
)

// keyPair is a signing key and its public key file: ECDSA P-256 as `cosign
// generate-key-pair` makes, or RSA and Ed25519 as `cosign import-key-pair`
// takes.
type keyPair struct {
	signer  crypto.Signer
	pubFile string
	pubPEM  []byte
}

func newKey(t *testing.T, dir, name, kind string) *keyPair {
	t.Helper()
	var s crypto.Signer
	var err error
	switch kind {
	case "ecdsa":
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		s, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, s, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	k := &keyPair{signer: s, pubFile: filepath.Join(dir, name+".pub"), pubPEM: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
	if err := os.WriteFile(k.pubFile, k.pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return k
}

// signMessage signs msg as cosign does: SHA-256, then ECDSA or RSA PKCS #1
// v1.5; Ed25519 signs the message itself.
func signMessage(t *testing.T, s crypto.Signer, msg []byte) []byte {
	t.Helper()
	var sig []byte
	var err error
	if _, ok := s.(ed25519.PrivateKey); ok {
		sig, err = s.Sign(rand.Reader, msg, crypto.Hash(0))
	} else {
		h := sha256.Sum256(msg)
		sig, err = s.Sign(rand.Reader, h[:], crypto.SHA256)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// fakeSigstore is a Sigstore deployment for tests: sigstore-go's
// VirtualSigstore provides the Rekor log (signed entry timestamps and
// inclusion proofs) and its own Fulcio CA, whose certificates carry no SCT;
// a second Fulcio CA here issues certificates with SCTs embedded by a test
// CT log. Both CAs, the Rekor log, the CT log and the VirtualSigstore's
// timestamp authority are written to a trusted_root.json.
type fakeSigstore struct {
	vs          *ca.VirtualSigstore
	root, inter *x509.Certificate
	interKey    *ecdsa.PrivateKey
	ctKey       *ecdsa.PrivateKey
	ctID        [32]byte
	rekorID     []byte
	trustedRoot string
	serial      atomic.Int64
}

func newFakeSigstore(t *testing.T, dir string) *fakeSigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	rootCert, rootKey, err := ca.GenerateRootCa()
	if err != nil {
		t.Fatal(err)
	}
	inter, interKey, err := ca.GenerateFulcioIntermediate(rootCert, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	ctKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ctDER, err := x509.MarshalPKIXPublicKey(ctKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSigstore{vs: vs, root: rootCert, inter: inter, interKey: interKey, ctKey: ctKey, ctID: sha256.Sum256(ctDER)}
	idHex, err := vs.RekorLogID()
	if err != nil {
		t.Fatal(err)
	}
	if f.rekorID, err = hex.DecodeString(idHex); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	fulcio := &root.FulcioCertificateAuthority{Root: rootCert, Intermediates: []*x509.Certificate{inter}, ValidityPeriodStart: now.Add(-time.Hour), URI: "https://fulcio.test"}
	// VirtualSigstore names its log by the hex text of the key ID; a
	// trusted root holds the raw ID.
	rekor := map[string]*root.TransparencyLog{}
	for id, l := range vs.RekorLogs() {
		c := *l
		c.ID = f.rekorID
		rekor[id] = &c
	}
	ctlogs := map[string]*root.TransparencyLog{hex.EncodeToString(f.ctID[:]): {
		BaseURL: "https://ct.test", ID: f.ctID[:], ValidityPeriodStart: now.Add(-time.Hour),
		HashFunc: crypto.SHA256, PublicKey: ctKey.Public(), SignatureHashFunc: crypto.SHA256,
	}}
	cas := append([]root.CertificateAuthority{fulcio}, vs.FulcioCertificateAuthorities()...)
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, cas, ctlogs, vs.TimestampingAuthorities(), rekor)
	if err != nil {
		t.Fatal(err)
	}
	data, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	f.trustedRoot = filepath.Join(dir, "trusted_root.json")
	if err := os.WriteFile(f.trustedRoot, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// certKey is a short-lived signing certificate and its key.
type certKey struct {
	key   *ecdsa.PrivateKey
	leaf  *x509.Certificate
	chain []*x509.Certificate // intermediates and root
}

func (c *certKey) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.leaf.Raw})
}

func (c *certKey) chainPEM() []byte {
	var out []byte
	for _, cert := range c.chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})...)
	}
	return out
}

// issue makes a Fulcio certificate for subject (an email) from the OIDC
// issuer, with an SCT from the test CT log when sct is set.
func (f *fakeSigstore) issue(t *testing.T, issuer, subject string, sct bool) *certKey {
	t.Helper()
	return f.issueWith(t, issuer, subject, sct)
}

// issueWith is issue with extra extensions: Fulcio's, for a workflow.
func (f *fakeSigstore) issueWith(t *testing.T, issuer, subject string, sct bool, extra ...pkix.Extension) *certKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(f.serial.Add(1) + 100),
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(10 * time.Minute),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{{
			Id:    asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}, // Fulcio's OIDC issuer (v1)
			Value: []byte(issuer),
		}},
	}
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, extra...)
	// A workflow's identity is a URI, a person's an email.
	if u, err := url.Parse(subject); err == nil && u.Scheme == "https" {
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{subject}
	}
	leaf := createCert(t, tmpl, f.inter, key.Public(), f.interKey)
	if sct {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, f.sctExtension(t, leaf))
		leaf = createCert(t, tmpl, f.inter, key.Public(), f.interKey)
	}
	return &certKey{key: key, leaf: leaf, chain: []*x509.Certificate{f.inter, f.root}}
}

// sctExtension is the embedded-SCT extension (RFC 6962, section 3.3) for a
// certificate whose TBS is pre's, signed by the test CT log.
func (f *fakeSigstore) sctExtension(t *testing.T, pre *x509.Certificate) pkix.Extension {
	t.Helper()
	// The signed TBS is the final certificate's without the SCT list,
	// which is pre's: the same template, signed before the list was added.
	tbs := pre.RawTBSCertificate
	ts := uint64(time.Now().UnixMilli())
	sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, LogID: ct.LogID{KeyID: f.ctID}, Timestamp: ts}
	entry := ct.LogEntry{Leaf: ct.MerkleTreeLeaf{
		Version: ct.V1, LeafType: ct.TimestampedEntryLeafType,
		TimestampedEntry: &ct.TimestampedEntry{
			Timestamp: ts, EntryType: ct.PrecertLogEntryType,
			PrecertEntry: &ct.PreCert{IssuerKeyHash: sha256.Sum256(f.inter.RawSubjectPublicKeyInfo), TBSCertificate: tbs},
		},
	}}
	input, err := ct.SerializeSCTSignatureInput(sct, entry)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, f.ctKey, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sct.Signature = ct.DigitallySigned{Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA}, Signature: sig}
	list, err := ctx509util.MarshalSCTsIntoSCTList([]*ct.SignedCertificateTimestamp{&sct})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cttls.Marshal(*list)
	if err != nil {
		t.Fatal(err)
	}
	value, err := asn1.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}, Value: value}
}

func createCert(t *testing.T, tmpl, parent *x509.Certificate, pub crypto.PublicKey, priv crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// logEntry enters body into the VirtualSigstore's Rekor log: a
// transparency-log entry with its signed entry timestamp and, when proof is
// set, an inclusion proof with a signed checkpoint.
func (f *fakeSigstore) logEntry(t *testing.T, kind string, body []byte, proof bool) *protorekor.TransparencyLogEntry {
	t.Helper()
	integrated := time.Now().Unix()
	set, err := f.vs.RekorSignPayload(tlog.RekorPayload{
		Body: base64.StdEncoding.EncodeToString(body), IntegratedTime: integrated, LogIndex: 0, LogID: hex.EncodeToString(f.rekorID),
	})
	if err != nil {
		t.Fatal(err)
	}
	tle := &protorekor.TransparencyLogEntry{
		LogIndex:          0,
		LogId:             &protocommon.LogId{KeyId: f.rekorID},
		KindVersion:       &protorekor.KindVersion{Kind: kind, Version: "0.0.1"},
		IntegratedTime:    integrated,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: set},
		CanonicalizedBody: body,
	}
	if proof {
		p, err := f.vs.GetInclusionProof(body)
		if err != nil {
			t.Fatal(err)
		}
		rootHash, err := hex.DecodeString(*p.RootHash)
		if err != nil {
			t.Fatal(err)
		}
		tle.InclusionProof = &protorekor.InclusionProof{LogIndex: *p.LogIndex, RootHash: rootHash, TreeSize: *p.TreeSize, Checkpoint: &protorekor.Checkpoint{Envelope: *p.Checkpoint}}
	}
	return tle
}

// rekorBundleAnnotation is cosign's dev.sigstore.cosign/bundle annotation
// for a log entry.
func rekorBundleAnnotation(t *testing.T, tle *protorekor.TransparencyLogEntry) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"SignedEntryTimestamp": tle.InclusionPromise.SignedEntryTimestamp,
		"Payload": map[string]any{
			"body":           base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
			"integratedTime": tle.IntegratedTime,
			"logIndex":       tle.LogIndex,
			"logID":          hex.EncodeToString(tle.LogId.KeyId),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hashedRekordBody is a Rekor hashedrekord v0.0.1 entry.
func hashedRekordBody(t *testing.T, artifact, sig, pubPEM []byte) []byte {
	t.Helper()
	h := sha256.Sum256(artifact)
	return mustJSON(t, map[string]any{
		"apiVersion": "0.0.1", "kind": "hashedrekord",
		"spec": map[string]any{
			"data":      map[string]any{"hash": map[string]any{"algorithm": "sha256", "value": hex.EncodeToString(h[:])}},
			"signature": map[string]any{"content": sig, "publicKey": map[string]any{"content": pubPEM}},
		},
	})
}

// dsseBody is a Rekor dsse v0.0.1 entry.
func dsseBody(t *testing.T, env, payload, sig, pubPEM []byte) []byte {
	t.Helper()
	eh, ph := sha256.Sum256(env), sha256.Sum256(payload)
	return mustJSON(t, map[string]any{
		"apiVersion": "0.0.1", "kind": "dsse",
		"spec": map[string]any{
			"envelopeHash": map[string]any{"algorithm": "sha256", "value": hex.EncodeToString(eh[:])},
			"payloadHash":  map[string]any{"algorithm": "sha256", "value": hex.EncodeToString(ph[:])},
			"signatures":   []any{map[string]any{"signature": base64.StdEncoding.EncodeToString(sig), "verifier": pubPEM}},
		},
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// simpleSigning is the payload `cosign sign` signs for the image d.
func simpleSigning(t *testing.T, ref string, d digest.Digest, optional map[string]any) []byte {
	t.Helper()
	return mustJSON(t, map[string]any{
		"critical": map[string]any{
			"identity": map[string]any{"docker-reference": ref},
			"image":    map[string]any{"docker-manifest-digest": d.String()},
			"type":     "cosign container image signature",
		},
		"optional": optional,
	})
}

// statement is an in-toto statement about d, as `cosign attest` (v0.1) and
// `cosign sign --new-bundle-format` (v1) make them.
func statement(t *testing.T, predicateType string, d digest.Digest, predicate any) []byte {
	t.Helper()
	s := map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": predicateType,
		"subject":       []any{map[string]any{"name": "image", "digest": map[string]any{d.Algorithm().String(): d.Encoded()}}},
	}
	if predicate != nil {
		s["predicate"] = predicate
	}
	return mustJSON(t, s)
}

// signDSSE signs payload into a DSSE envelope with s.
func signDSSE(t *testing.T, s crypto.Signer, payload []byte) (env []byte, sig []byte) {
	t.Helper()
	sig = signMessage(t, s, dsse.PAE("application/vnd.in-toto+json", payload))
	env = mustJSON(t, map[string]any{
		"payloadType": "application/vnd.in-toto+json",
		"payload":     base64.StdEncoding.EncodeToString(payload),
		"signatures":  []any{map[string]any{"keyid": "", "sig": base64.StdEncoding.EncodeToString(sig)}},
	})
	return env, sig
}

// layer is one layer of a signature manifest.
type layer struct {
	mediaType   string
	data        []byte
	annotations map[string]string
}

// keySigned is a simple-signing layer signed by key, as `cosign sign --key
// … --tlog-upload=false` pushes it.
func keySigned(t *testing.T, k *keyPair, payload []byte) layer {
	sig := signMessage(t, k.signer, payload)
	return layer{cosign.MediaTypeSimpleSigning, payload, map[string]string{cosign.AnnotationSignature: base64.StdEncoding.EncodeToString(sig)}}
}

// keylessSigned is a simple-signing layer signed with a Fulcio certificate
// and logged in Rekor, as keyless `cosign sign` pushes it.
func (f *fakeSigstore) keylessSigned(t *testing.T, c *certKey, payload []byte) layer {
	sig := signMessage(t, c.key, payload)
	tle := f.logEntry(t, "hashedrekord", hashedRekordBody(t, payload, sig, c.pem()), false)
	return layer{cosign.MediaTypeSimpleSigning, payload, map[string]string{
		cosign.AnnotationSignature:   base64.StdEncoding.EncodeToString(sig),
		cosign.AnnotationCertificate: string(c.pem()),
		cosign.AnnotationChain:       string(c.chainPEM()),
		cosign.AnnotationBundle:      rekorBundleAnnotation(t, tle),
	}}
}

// keyAttested is an attestation layer signed by key, as `cosign attest
// --key … --tlog-upload=false` pushes it.
func keyAttested(t *testing.T, k *keyPair, predicateType string, stmt []byte) layer {
	env, _ := signDSSE(t, k.signer, stmt)
	return layer{cosign.MediaTypeDSSE, env, map[string]string{cosign.AnnotationSignature: "", cosign.AnnotationPredicateType: predicateType}}
}

// bundleOptions shape a Sigstore bundle.
type bundleOptions struct {
	cert *certKey
	key  *keyPair
	// tlog logs the signature in Rekor, with an inclusion proof.
	tlog bool
}

// dsseBundle is a v0.3 Sigstore bundle over a DSSE envelope of stmt, as
// `cosign sign --new-bundle-format` and `cosign attest --new-bundle-format`
// make them.
func (f *fakeSigstore) dsseBundle(t *testing.T, stmt []byte, o bundleOptions) []byte {
	t.Helper()
	var s crypto.Signer = o.cert.keyOrNil()
	vm := &protobundle.VerificationMaterial{}
	var pubPEM []byte
	if o.key != nil {
		s, pubPEM = o.key.signer, o.key.pubPEM
		vm.Content = &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: "test-key"}}
	} else {
		pubPEM = o.cert.pem()
		vm.Content = &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: o.cert.leaf.Raw}}
	}
	env, sig := signDSSE(t, s, stmt)
	if o.tlog {
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{f.logEntry(t, "dsse", dsseBody(t, env, stmt, sig, pubPEM), true)}
	}
	b := &protobundle.Bundle{
		MediaType:            cosign.BundleV03Type,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: stmt, PayloadType: "application/vnd.in-toto+json",
			Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
	data, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func (c *certKey) keyOrNil() crypto.Signer {
	if c == nil {
		return nil
	}
	return c.key
}

// virtualBundle is a Sigstore bundle made by sigstore-go's VirtualSigstore
// itself: a message signature over artifact with its Fulcio certificate
// (which has no SCT) and its Rekor entry, as a v0.1 bundle (inclusion
// promise, no proof).
func (f *fakeSigstore) virtualBundle(t *testing.T, identity, issuer string, artifact []byte) []byte {
	t.Helper()
	e, err := f.vs.Sign(identity, issuer, artifact)
	if err != nil {
		t.Fatal(err)
	}
	vc, err := e.VerificationContent()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := e.SignatureContent()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := e.TlogEntries()
	if err != nil {
		t.Fatal(err)
	}
	// The entry's signed entry timestamp is not exported: sign its payload
	// again with the same log key.
	tle := f.logEntry(t, "hashedrekord", entries[0].TransparencyLogEntry().CanonicalizedBody, false)
	msg := sc.MessageSignatureContent()
	b := &protobundle.Bundle{
		MediaType: cosign.BundleV01Type,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:     &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: &protocommon.X509CertificateChain{Certificates: []*protocommon.X509Certificate{{RawBytes: vc.Certificate().Raw}}}},
			TlogEntries: []*protorekor.TransparencyLogEntry{tle},
		},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: msg.Digest()},
			Signature:     msg.Signature(),
		}},
	}
	data, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// cosignConfig is the image config cosign writes for its tag-layout
// manifests.
func cosignConfig(t *testing.T, layers []ocispec.Descriptor) []byte {
	ids := make([]string, len(layers))
	for i, l := range layers {
		ids[i] = l.Digest.String()
	}
	return mustJSON(t, map[string]any{
		"architecture": "", "created": "0001-01-01T00:00:00Z", "history": []any{map[string]any{"created": "0001-01-01T00:00:00Z"}},
		"os": "", "rootfs": map[string]any{"type": "layers", "diff_ids": ids}, "config": map[string]any{},
	})
}

func pushLayers(p *testbed.Pusher, layers []layer) []ocispec.Descriptor {
	descs := make([]ocispec.Descriptor, len(layers))
	for i, l := range layers {
		descs[i] = p.Blob(l.mediaType, l.data)
		descs[i].Annotations = l.annotations
	}
	return descs
}

// pushTagLayout pushes a signature (".sig") or attestation (".att")
// manifest under cosign's tag for subject.
func pushTagLayout(t *testing.T, p *testbed.Pusher, subject ocispec.Descriptor, suffix string, layers ...layer) ocispec.Descriptor {
	descs := pushLayers(p, layers)
	config := p.Blob(ocispec.MediaTypeImageConfig, cosignConfig(t, descs))
	tag := "sha256-" + subject.Digest.Encoded() + suffix
	return p.Manifest(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: config, Layers: descs,
	}, tag)
}

// pushSignatureReferrer pushes signatures as `cosign sign
// --registry-referrers-mode=oci-1-1` does: the tag layout's manifest with
// the artifact type as config media type and a subject.
func pushSignatureReferrer(t *testing.T, p *testbed.Pusher, subject ocispec.Descriptor, layers ...layer) ocispec.Descriptor {
	descs := pushLayers(p, layers)
	config := p.Blob(cosign.SignatureType, cosignConfig(t, descs))
	return p.Manifest(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: cosign.SignatureType, Config: config, Layers: descs,
		Subject: &ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
	}, "")
}

// pushReferrer pushes layers as cosign's WriteReferrer does (bundles,
// attestations in OCI 1.1 mode): an empty config carrying the artifact type,
// layers without annotations, a subject.
func pushReferrer(t *testing.T, p *testbed.Pusher, subject ocispec.Descriptor, artifactType string, annotations map[string]string, layers ...layer) ocispec.Descriptor {
	for i := range layers {
		layers[i].annotations = nil
	}
	descs := pushLayers(p, layers)
	config := p.Blob(ocispec.MediaTypeEmptyJSON, []byte("{}"))
	config.ArtifactType = artifactType
	return p.Manifest(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: artifactType, Config: config, Layers: descs, Annotations: annotations,
		Subject: &ocispec.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
	}, "")
}

// pushBundle attaches a Sigstore bundle as cosign does.
func pushBundle(t *testing.T, p *testbed.Pusher, subject ocispec.Descriptor, bundleType, predicateType string, data []byte) ocispec.Descriptor {
	return pushReferrer(t, p, subject, bundleType, map[string]string{
		"dev.sigstore.bundle.content":       "dsse-envelope",
		"dev.sigstore.bundle.predicateType": predicateType,
	}, layer{mediaType: bundleType, data: data})
}
