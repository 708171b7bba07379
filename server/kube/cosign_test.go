package kube_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"google.golang.org/protobuf/encoding/protojson"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"oras.land/oras-go/v2/content"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/server/kube"
	"github.com/vouch-project/vouch/server/reload"
	"github.com/vouch-project/vouch/verifier/cosign"
)

// cosignKeySpec trusts the cosign public key of the Secret cosign-pub
// (named in deploy/rbac/role.yaml), for signatures made with
// --tlog-upload=false.
const cosignKeySpec = `
verifiers:
  - name: cosign
    type: cosign
    cosign:
      keys:
        refs: [{kind: Secret, name: cosign-pub, key: cosign.pub}]
      ignoreTlogUnsafe: true
`

// cosignKeylessSpec trusts, under the Sigstore trusted root of the
// ConfigMap sigstore-trusted-root, Fulcio certificates of one identity.
// VirtualSigstore's certificates carry no SCT, hence ignoreSCTUnsafe (the
// SCT check is verifier/cosign's tests' business).
const cosignKeylessSpec = `
verifiers:
  - name: cosign
    type: cosign
    cosign:
      trustedRootRef: {kind: ConfigMap, name: sigstore-trusted-root, key: trusted_root.json}
      identities: [{issuer: "https://issuer.test", subject: "dave@example.com"}]
      ignoreSCTUnsafe: true
`

// cosignRootsSpec trusts certificates chaining to the CA certificates of
// the Secret cosign-ca, of one identity (certificates of CAs other than
// Fulcio carry no OIDC issuer), for signatures made with
// --tlog-upload=false.
const cosignRootsSpec = `
verifiers:
  - name: cosign
    type: cosign
    cosign:
      certificateRoots:
        refs: [{kind: Secret, name: cosign-ca, key: ca.crt}]
      identities: [{issuerRegExp: ".*", subject: "carol@example.com"}]
      ignoreTlogUnsafe: true
`

// grantTrust lets vouch's service account read more Secrets and
// ConfigMaps of its namespace, as deploy/rbac/role.yaml says to: a copy of
// its Role and RoleBinding, named vouch-trust-cosign, listing these.
func (b *bed) grantTrust(t *testing.T, secrets, configMaps []string) {
	t.Helper()
	path := filepath.Join("..", "..", "deploy", "rbac", "role.yaml")
	for _, doc := range strings.Split(string(readFile(t, path)), "\n---\n") {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		u.SetName("vouch-trust-cosign")
		switch u.GetKind() {
		case "Role":
			rules, _ := u.Object["rules"].([]any)
			for _, r := range rules {
				rule := r.(map[string]any)
				names := []any{}
				list := secrets
				if rule["resources"].([]any)[0] == "configmaps" {
					list = configMaps
				}
				for _, n := range list {
					names = append(names, n)
				}
				rule["resourceNames"] = names
			}
		case "RoleBinding":
			if err := unstructured.SetNestedField(u.Object, "vouch-trust-cosign", "roleRef", "name"); err != nil {
				t.Fatal(err)
			}
		}
		b.create(t, &u)
	}
}

// setConfigMap creates or updates a ConfigMap of vouch's namespace.
func (b *bed) setConfigMap(t *testing.T, name string, data map[string]string) {
	t.Helper()
	ctx := context.Background()
	var cm corev1.ConfigMap
	if err := b.admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cm); err != nil {
		b.create(t, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data})
		return
	}
	cm.Data = data
	if err := b.admin.Update(ctx, &cm); err != nil {
		t.Fatal(err)
	}
}

// cosignCLI runs the testbed's real cosign with a home of its own.
type cosignCLI struct {
	dir string
	env []string
}

func newCosignCLI(t *testing.T) *cosignCLI {
	t.Helper()
	testbed.Bin(t, "cosign")
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	return &cosignCLI{dir: dir, env: []string{"HOME=" + home, "COSIGN_PASSWORD=", "COSIGN_YES=true", "XDG_CONFIG_HOME=" + home, "TUF_ROOT=" + filepath.Join(home, "tuf")}}
}

// keyPair runs `cosign generate-key-pair` and returns the prefix of the
// files it wrote (PREFIX.key, PREFIX.pub).
func (c *cosignCLI) keyPair(t *testing.T, name string) string {
	t.Helper()
	prefix := filepath.Join(c.dir, name)
	testbed.Run(t, c.env, "cosign", "generate-key-pair", "--output-key-prefix", prefix)
	return prefix
}

// sign runs `cosign sign` on ref in its default layout (the .sig tag),
// without the transparency log, with args added.
func (c *cosignCLI) sign(t *testing.T, ref string, args ...string) {
	t.Helper()
	args = append(append([]string{"sign", "--tlog-upload=false", "--allow-http-registry"}, args...), ref)
	testbed.Run(t, c.env, "cosign", args...)
}

// virtualSigstore is sigstore-go's VirtualSigstore (a Fulcio CA, a Rekor
// log, a timestamp authority) and a trusted_root.json of it, as
// verifier/cosign's tests build them.
type virtualSigstore struct {
	vs          *ca.VirtualSigstore
	rekorID     []byte
	trustedRoot []byte
}

func newVirtualSigstore(t *testing.T) *virtualSigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	idHex, err := vs.RekorLogID()
	if err != nil {
		t.Fatal(err)
	}
	s := &virtualSigstore{vs: vs}
	if s.rekorID, err = hex.DecodeString(idHex); err != nil {
		t.Fatal(err)
	}
	// VirtualSigstore names its log by the hex text of the key ID; a
	// trusted root holds the raw ID.
	rekor := map[string]*root.TransparencyLog{}
	for id, l := range vs.RekorLogs() {
		c := *l
		c.ID = s.rekorID
		rekor[id] = &c
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), map[string]*root.TransparencyLog{}, vs.TimestampingAuthorities(), rekor)
	if err != nil {
		t.Fatal(err)
	}
	if s.trustedRoot, err = tr.MarshalJSON(); err != nil {
		t.Fatal(err)
	}
	return s
}

// sign attaches to the image ref (in repo of b's registry) a Sigstore
// bundle made by the VirtualSigstore: a message signature over the
// image's manifest with a Fulcio certificate of identity from issuer and
// its Rekor entry (v0.1: an inclusion promise), as an OCI 1.1 referrer
// in the layout cosign attaches bundles with.
func (s *virtualSigstore) sign(t *testing.T, b *bed, repo, seed, identity, issuer string) string {
	t.Helper()
	p := testbed.NewPusher(t, b.host, repo)
	img := p.Image(seed, seed)
	manifest, err := content.FetchAll(context.Background(), p.Repo, img)
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.vs.Sign(identity, issuer, manifest)
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
	// The entry's signed entry timestamp is not exported: sign its
	// payload again with the log's key.
	body := entries[0].TransparencyLogEntry().CanonicalizedBody
	integrated := time.Now().Unix()
	set, err := s.vs.RekorSignPayload(tlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(body), IntegratedTime: integrated, LogID: hex.EncodeToString(s.rekorID)})
	if err != nil {
		t.Fatal(err)
	}
	msg := sc.MessageSignatureContent()
	data, err := protojson.Marshal(&protobundle.Bundle{
		MediaType: cosign.BundleV01Type,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: &protocommon.X509CertificateChain{
				Certificates: []*protocommon.X509Certificate{{RawBytes: vc.Certificate().Raw}}}},
			TlogEntries: []*protorekor.TransparencyLogEntry{{
				LogId: &protocommon.LogId{KeyId: s.rekorID}, KindVersion: &protorekor.KindVersion{Kind: "hashedrekord", Version: "0.0.1"},
				IntegratedTime: integrated, InclusionPromise: &protorekor.InclusionPromise{SignedEntryTimestamp: set}, CanonicalizedBody: body,
			}},
		},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: msg.Digest()},
			Signature:     msg.Signature(),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	layer := p.Blob(cosign.BundleV01Type, data)
	config := p.Blob(ocispec.MediaTypeEmptyJSON, []byte("{}"))
	config.ArtifactType = cosign.BundleV01Type
	p.Manifest(ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: cosign.BundleV01Type, Config: config, Layers: []ocispec.Descriptor{layer},
		Annotations: map[string]string{"dev.sigstore.bundle.content": "message-signature"},
		Subject:     &ocispec.Descriptor{MediaType: img.MediaType, Digest: img.Digest, Size: img.Size},
	}, "")
	return b.host + "/" + repo + "@" + img.Digest.String()
}

// certChain is a CA (a root and an intermediate) that issued a code-signing
// certificate for carol@example.com to a cosign key, as files for `cosign
// sign --certificate --certificate-chain`.
type certChain struct {
	rootPEM             []byte
	leafFile, chainFile string
}

func newCertChain(t *testing.T, dir, name, pubFile string) *certChain {
	t.Helper()
	block, _ := pem.Decode(readFile(t, pubFile))
	if block == nil {
		t.Fatalf("%s: no PEM", pubFile)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
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
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "carol"}, EmailAddresses: []string{"carol@example.com"},
		// cosign checks the chain at the leaf's notBefore: within the
		// intermediate's validity, which starts 2 minutes ago.
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}, inter, pub, interKey)
	if err != nil {
		t.Fatal(err)
	}
	encode := func(ders ...[]byte) []byte {
		var out []byte
		for _, d := range ders {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
		}
		return out
	}
	c := &certChain{rootPEM: encode(rootCert.Raw), leafFile: filepath.Join(dir, name+".crt"), chainFile: filepath.Join(dir, name+"-chain.crt")}
	for file, data := range map[string][]byte{c.leafFile: encode(der), c.chainFile: encode(inter.Raw, rootCert.Raw)} {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// pushImage pushes a small image to repo and returns its reference by
// digest.
func (b *bed) pushImage(t *testing.T, repo, seed string) string {
	t.Helper()
	img := testbed.NewPusher(t, b.host, repo).Image(seed, seed)
	return b.host + "/" + repo + "@" + img.Digest.String()
}

// rotations times n rotations of a trust object: before each, old is
// allowed; set(i) installs the trust of image i%2; the time until the
// image of the old trust is first denied is measured, and then the image
// of the new trust must be allowed.
func rotations(t *testing.T, v *vouchServer, images [2]string, n int, set func(i int)) []time.Duration {
	t.Helper()
	var out []time.Duration
	for i := range n {
		next, old := images[i%2], images[(i+1)%2]
		if !v.allowed(t, old) {
			t.Fatalf("rotation %d: %s not allowed before it", i, old)
		}
		start := time.Now()
		set(i)
		out = append(out, v.waitVerdict(t, old, false, start))
		if !v.allowed(t, next) {
			t.Errorf("rotation %d: %s, signed under the new trust, denied", i, next)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// TestCosign runs the Kubernetes source with cosign verifiers whose trust
// comes from the cluster, on a real kube-apiserver and etcd, as the
// service account of deploy/rbac (impersonated), deciding through the
// Gatekeeper provider on real cosign signatures: public keys from a
// Secret (keys.refs), a Sigstore trusted root from a ConfigMap
// (trustedRootRef) for keyless signatures, CA certificates from a Secret
// (certificateRoots.refs) for certificate-signed ones; each rotated
// without a restart; a broken reference says Ready=False naming the
// field.
func TestCosign(t *testing.T) {
	b := newBed(t)
	sa := b.as(t, serviceAccount)
	cli := newCosignCLI(t)
	// The cluster admin lists the ClusterVouchConfig's objects in the
	// Role, as deploy/rbac/role.yaml says (cosign-pub is there already).
	b.grantTrust(t, []string{"cosign-ca"}, []string{"sigstore-trusted-root"})
	v := startVouch(t, sa, kube.Options{})

	t.Run("keys from a Secret", func(t *testing.T) {
		k1, k2 := cli.keyPair(t, "k1"), cli.keyPair(t, "k2")
		signed1, signed2 := b.pushImage(t, "kube/cosign", "signed-k1"), b.pushImage(t, "kube/cosign", "signed-k2")
		unsigned := b.pushImage(t, "kube/cosign", "unsigned")
		cli.sign(t, signed1, "--key", k1+".key")
		cli.sign(t, signed2, "--key", k2+".key")
		pub1, pub2 := readFile(t, k1+".pub"), readFile(t, k2+".pub")

		b.setSecret(t, "cosign-pub", map[string][]byte{"cosign.pub": pub1})
		gen := b.setSpec(t, cosignKeySpec)
		b.waitStatus(t, gen, metav1.ConditionTrue, kube.ReasonApplied, v.logs)
		ok, reason := v.decide(t, signed1)
		t.Logf("signed with k1: allowed=%v: %s", ok, reason)
		if !ok || !strings.Contains(reason, "signed by key secret cosign-pub key cosign.pub (SHA256:") {
			t.Fatalf("signed with the Secret's key: allowed=%v %q, want allowed naming the Secret's key", ok, reason)
		}
		for _, img := range []string{unsigned, signed2} {
			if ok, reason := v.decide(t, img); ok {
				t.Errorf("%s allowed under k1: %s", img, reason)
			} else {
				t.Logf("%s denied: %s", img, reason)
			}
		}

		lat := rotations(t, v, [2]string{signed2, signed1}, 6, func(i int) {
			b.setSecret(t, "cosign-pub", map[string][]byte{"cosign.pub": [][]byte{pub2, pub1}[i%2]})
		})
		t.Logf("key rotation in the Secret → first denial of the old key's image (watches, interval %v): min %v, median %v, max %v over %d rotations",
			reload.DefaultInterval, lat[0], lat[len(lat)/2], lat[len(lat)-1], len(lat))

		gen = b.setSpec(t, strings.Replace(cosignKeySpec, "key: cosign.pub", "key: nope", 1))
		c := b.waitStatus(t, gen, metav1.ConditionFalse, kube.ReasonInvalidReference, v.logs)
		t.Logf("Ready=False %s: %s", c.Reason, c.Message)
		if want := "spec.verifiers[0].cosign.keys.refs[0]: secret vouch/cosign-pub has no key nope"; c.Message != want {
			t.Errorf("message %q, want %q", c.Message, want)
		}
		if !v.allowed(t, signed1) || v.allowed(t, signed2) {
			t.Error("the last good configuration (k1) no longer serves")
		}
	})

	t.Run("keyless under a trusted root from a ConfigMap", func(t *testing.T) {
		const issuer, dave = "https://issuer.test", "dave@example.com"
		s1, s2 := newVirtualSigstore(t), newVirtualSigstore(t)
		signed1 := s1.sign(t, b, "kube/keyless", "keyless-1", dave, issuer)
		signed2 := s2.sign(t, b, "kube/keyless", "keyless-2", dave, issuer)
		mallory := s1.sign(t, b, "kube/keyless", "keyless-mallory", "mallory@example.com", issuer)
		unsigned := b.pushImage(t, "kube/keyless", "unsigned")

		b.setConfigMap(t, "sigstore-trusted-root", map[string]string{"trusted_root.json": string(s1.trustedRoot)})
		gen := b.setSpec(t, cosignKeylessSpec)
		b.waitStatus(t, gen, metav1.ConditionTrue, kube.ReasonApplied, v.logs)
		ok, reason := v.decide(t, signed1)
		t.Logf("keyless under root 1: allowed=%v: %s", ok, reason)
		if !ok || !strings.Contains(reason, "signed by dave@example.com (issuer https://issuer.test); in Rekor") {
			t.Fatalf("keyless under the ConfigMap's root: allowed=%v %q, want allowed naming dave", ok, reason)
		}
		for _, img := range []string{signed2, mallory, unsigned} {
			if ok, reason := v.decide(t, img); ok {
				t.Errorf("%s allowed under root 1: %s", img, reason)
			} else {
				t.Logf("%s denied: %s", img, reason)
			}
		}

		lat := rotations(t, v, [2]string{signed2, signed1}, 4, func(i int) {
			b.setConfigMap(t, "sigstore-trusted-root", map[string]string{"trusted_root.json": string([][]byte{s2.trustedRoot, s1.trustedRoot}[i%2])})
		})
		t.Logf("trusted root replaced in the ConfigMap → first denial of the old root's image: min %v, median %v, max %v over %d rotations",
			lat[0], lat[len(lat)/2], lat[len(lat)-1], len(lat))

		gen = b.setSpec(t, strings.Replace(cosignKeylessSpec, "key: trusted_root.json", "key: nope", 1))
		c := b.waitStatus(t, gen, metav1.ConditionFalse, kube.ReasonInvalidReference, v.logs)
		t.Logf("Ready=False %s: %s", c.Reason, c.Message)
		if want := "spec.verifiers[0].cosign.trustedRootRef: configMap vouch/sigstore-trusted-root has no key nope"; c.Message != want {
			t.Errorf("message %q, want %q", c.Message, want)
		}
		if !v.allowed(t, signed1) || v.allowed(t, signed2) {
			t.Error("the last good configuration (root 1) no longer serves")
		}
	})

	t.Run("certificate roots from a Secret", func(t *testing.T) {
		k := cli.keyPair(t, "carol")
		ca1, ca2 := newCertChain(t, cli.dir, "ca1", k+".pub"), newCertChain(t, cli.dir, "ca2", k+".pub")
		signed1, signed2 := b.pushImage(t, "kube/certs", "cert-ca1"), b.pushImage(t, "kube/certs", "cert-ca2")
		keyOnly := b.pushImage(t, "kube/certs", "key-only")
		cli.sign(t, signed1, "--key", k+".key", "--certificate", ca1.leafFile, "--certificate-chain", ca1.chainFile)
		cli.sign(t, signed2, "--key", k+".key", "--certificate", ca2.leafFile, "--certificate-chain", ca2.chainFile)
		cli.sign(t, keyOnly, "--key", k+".key")

		b.setSecret(t, "cosign-ca", map[string][]byte{"ca.crt": ca1.rootPEM})
		gen := b.setSpec(t, cosignRootsSpec)
		b.waitStatus(t, gen, metav1.ConditionTrue, kube.ReasonApplied, v.logs)
		ok, reason := v.decide(t, signed1)
		t.Logf("certificate under CA 1: allowed=%v: %s", ok, reason)
		if !ok || !strings.Contains(reason, "signed by carol@example.com") {
			t.Fatalf("certificate under the Secret's CA: allowed=%v %q, want allowed naming carol", ok, reason)
		}
		for _, img := range []string{signed2, keyOnly} {
			if ok, reason := v.decide(t, img); ok {
				t.Errorf("%s allowed under CA 1: %s", img, reason)
			} else {
				t.Logf("%s denied: %s", img, reason)
			}
		}

		lat := rotations(t, v, [2]string{signed2, signed1}, 4, func(i int) {
			b.setSecret(t, "cosign-ca", map[string][]byte{"ca.crt": [][]byte{ca2.rootPEM, ca1.rootPEM}[i%2]})
		})
		t.Logf("CA replaced in the Secret → first denial of the old CA's image: min %v, median %v, max %v over %d rotations",
			lat[0], lat[len(lat)/2], lat[len(lat)-1], len(lat))

		gen = b.setSpec(t, strings.Replace(cosignRootsSpec, "key: ca.crt", "key: nope", 1))
		c := b.waitStatus(t, gen, metav1.ConditionFalse, kube.ReasonInvalidReference, v.logs)
		t.Logf("Ready=False %s: %s", c.Reason, c.Message)
		if want := "spec.verifiers[0].cosign.certificateRoots.refs[0]: secret vouch/cosign-ca has no key nope"; c.Message != want {
			t.Errorf("message %q, want %q", c.Message, want)
		}
		// A Secret that holds no certificate: the build fails, naming the
		// field and the reference.
		b.setSecret(t, "cosign-ca", map[string][]byte{"ca.crt": ca1.rootPEM, "junk": []byte("not PEM")})
		gen = b.setSpec(t, strings.Replace(cosignRootsSpec, "key: ca.crt", "key: junk", 1))
		c = b.waitStatus(t, gen, metav1.ConditionFalse, kube.ReasonBuildFailed, v.logs)
		t.Logf("Ready=False %s: %s", c.Reason, c.Message)
		if want := "cosign.certificateRoots.refs[0] (secret cosign-ca key junk): "; !strings.Contains(c.Message, want) {
			t.Errorf("message %q, want it to contain %q", c.Message, want)
		}
		if !v.allowed(t, signed1) || v.allowed(t, signed2) {
			t.Error("the last good configuration (CA 1) no longer serves")
		}
	})
}
