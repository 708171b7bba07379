package notation_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	notationgo "github.com/notaryproject/notation-go"
	notationregistry "github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/signer"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/tspclient-go"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/notation"
)

// signing is one signature to make on a case's subject.
type signing struct {
	key   crypto.PrivateKey
	chain []*x509.Certificate
	// mediaType is the envelope type; default JWS.
	mediaType string
	// tsa, when set, countersigns the signature with an RFC 3161 timestamp.
	tsa *testTSA
	// expiry, when set, is the signature's validity (notation sign
	// --expiry).
	expiry time.Duration
	// signOther signs a different image and attaches the signature to the
	// case's subject.
	signOther bool
	// junk attaches a signature manifest whose one layer holds these bytes
	// under mediaType, instead of a real signature.
	junk []byte
}

// want is one expected result among a node's signatures.
type want struct {
	outcome vouch.Outcome
	reason  string
	details map[string]any
}

// verifyCase is a subject, its signatures, the verifier configuration that
// checks them and the results expected, one per signature.
type verifyCase struct {
	name     string
	repo     string
	signs    []signing
	verifier string
	// sbom signs an SBOM attached to the image instead of the image.
	sbom bool
	want []want
}

// pkiFixture is the trust material that the cases share.
type pkiFixture struct {
	trusted, other *testCA
	tsa            *testTSA
	dir            string
	// certificate chains and keys by role
	good, impostor, revoked, crlChecked, unreachable, shortLived signerKey
	shortLivedUntil                                              time.Time
}

type signerKey struct {
	key   crypto.PrivateKey
	chain []*x509.Certificate
}

func (k signerKey) sign(o signing) signing {
	o.key, o.chain = k.key, k.chain
	return o
}

func newPKIFixture(t *testing.T) *pkiFixture {
	t.Helper()
	f := &pkiFixture{trusted: newCA(t, "Vouch Test Root"), other: newCA(t, "Other Root"), tsa: newTSA(t), dir: t.TempDir()}
	crlURL := f.trusted.crlServer(t)
	f.good.key, f.good.chain = f.trusted.leaf(t, "signer", leafOptions{})
	f.impostor.key, f.impostor.chain = f.other.leaf(t, "impostor", leafOptions{})
	f.revoked.key, f.revoked.chain = f.trusted.leaf(t, "revoked signer", leafOptions{crlURL: crlURL})
	f.trusted.revoke(f.revoked.chain[0])
	f.crlChecked.key, f.crlChecked.chain = f.trusted.leaf(t, "crl-checked signer", leafOptions{crlURL: crlURL})
	f.unreachable.key, f.unreachable.chain = f.trusted.leaf(t, "unreachable-crl signer", leafOptions{crlURL: "http://" + testbed.FreeAddr(t) + "/ca.crl"})
	return f
}

// shortLife is the validity left to the short-lived certificate: time
// enough to sign and push its cases to both registries.
const shortLife = 10 * time.Second

// newShortLived issues a signing certificate that expires a few seconds
// from now: signatures made now are valid at signing time, and expired once
// the test waits.
func (f *pkiFixture) newShortLived(t *testing.T) {
	f.shortLivedUntil = time.Now().Add(shortLife)
	f.shortLived.key, f.shortLived.chain = f.trusted.leaf(t, "short-lived signer", leafOptions{notAfter: f.shortLivedUntil})
}

// verifiers builds the verifier configurations the cases name, for one
// registry host (scopes name the host).
func (f *pkiFixture) verifiers(t *testing.T, host string) map[string]*notation.Verifier {
	t.Helper()
	// The main store comes from a Notation configuration directory, as
	// `notation cert add` lays it out.
	storeDir := filepath.Join(f.dir, "truststore", "x509", "ca", "acme")
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(storeDir, "root.pem"), []byte(f.trusted.pem()), 0o644); err != nil {
		t.Fatal(err)
	}
	tsaFile := filepath.Join(f.dir, "tsa-root.pem")
	if err := os.WriteFile(tsaFile, []byte(f.tsa.root.pem()), 0o644); err != nil {
		t.Fatal(err)
	}
	inline := notation.TrustStores{Inline: map[string][]string{"ca:acme": {f.trusted.pem()}}}
	statement := func(level string, stores ...string) trustpolicy.TrustPolicy {
		return trustpolicy.TrustPolicy{
			Name:                  "acme",
			RegistryScopes:        []string{"*"},
			SignatureVerification: trustpolicy.SignatureVerification{VerificationLevel: level},
			TrustStores:           stores,
			TrustedIdentities:     []string{"*"},
		}
	}
	doc := func(statements ...trustpolicy.TrustPolicy) *trustpolicy.Document {
		return &trustpolicy.Document{Version: "1.0", TrustPolicies: statements}
	}

	withTSA := statement("strict", "ca:acme", "tsa:tsa")
	withTSA.SignatureVerification.VerifyTimestamp = trustpolicy.OptionAfterCertExpiry
	identity := statement("strict", "ca:acme")
	identity.TrustedIdentities = []string{"x509.subject:C=US, ST=WA, O=Someone Else, CN=someone-else"}
	identityOK := statement("strict", "ca:acme")
	identityOK.TrustedIdentities = []string{"x509.subject:C=US, ST=WA, O=Vouch Test, CN=signer"}
	scoped := statement("strict", "ca:acme")
	scoped.RegistryScopes = []string{host + "/notation/scoped"}
	skip := statement("skip")
	skip.TrustedIdentities = nil

	configs := map[string]notation.Options{
		"strict":      {TrustPolicy: doc(statement("strict", "ca:acme")), TrustStores: notation.TrustStores{Dir: f.dir}},
		"tsa":         {TrustPolicy: doc(withTSA), TrustStores: notation.TrustStores{Inline: inline.Inline, Files: map[string][]string{"tsa:tsa": {tsaFile}}}},
		"identity":    {TrustPolicy: doc(identity), TrustStores: inline},
		"identity-ok": {TrustPolicy: doc(identityOK), TrustStores: inline},
		"permissive":  {TrustPolicy: doc(statement("permissive", "ca:acme")), TrustStores: inline},
		"audit":       {TrustPolicy: doc(statement("audit", "ca:acme")), TrustStores: inline},
		"skip":        {TrustPolicy: doc(skip)},
		"scoped":      {TrustPolicy: doc(scoped), TrustStores: inline},
		"quick":       {TrustPolicy: notation.QuickTrustPolicy("acme"), TrustStores: notation.TrustStores{Inline: map[string][]string{"ca:acme": {f.trusted.pem()}, "signingAuthority:acme": {f.trusted.pem()}}}},
	}
	out := map[string]*notation.Verifier{}
	for name, opts := range configs {
		if name != "strict" {
			// strict keeps CRLs in memory, the others on disk.
			opts.Revocation.CRLCacheDir = filepath.Join(f.dir, "crl-cache")
		}
		v, err := notation.New(opts)
		if err != nil {
			t.Fatalf("verifier %s: %v", name, err)
		}
		out[name] = v
	}
	return out
}

func (f *pkiFixture) cases() []verifyCase {
	jws, cose := notation.MediaTypeJWS, notation.MediaTypeCOSE
	return []verifyCase{
		{name: "trusted CA, JWS", signs: []signing{f.good.sign(signing{mediaType: jws})}, verifier: "strict",
			want: []want{{vouch.Passed, "signed by", map[string]any{"envelope": "jws", "signer": "CN=signer,O=Vouch Test,ST=WA,C=US", "issuer": "CN=Vouch Test Root,O=Vouch Test,ST=WA,C=US", "level": "strict", "trustPolicy": "acme"}}}},
		{name: "trusted CA, COSE", signs: []signing{f.good.sign(signing{mediaType: cose})}, verifier: "strict",
			want: []want{{vouch.Passed, "signed by", map[string]any{"envelope": "cose"}}}},
		{name: "quick trust policy", signs: []signing{f.good.sign(signing{})}, verifier: "quick",
			want: []want{{vouch.Passed, "vouch-quick", nil}}},
		{name: "untrusted signer", signs: []signing{f.impostor.sign(signing{})}, verifier: "strict",
			want: []want{{vouch.Failed, "untrusted signer", map[string]any{"check": "authenticity"}}}},
		{name: "one of two signatures trusted", signs: []signing{f.impostor.sign(signing{}), f.good.sign(signing{mediaType: cose})}, verifier: "strict",
			want: []want{{vouch.Passed, "signed by", nil}, {vouch.Failed, "untrusted signer", nil}}},
		{name: "identity mismatch", signs: []signing{f.good.sign(signing{})}, verifier: "identity",
			want: []want{{vouch.Failed, "signer identity not trusted", map[string]any{"check": "authenticity"}}}},
		{name: "identity match", signs: []signing{f.good.sign(signing{})}, verifier: "identity-ok",
			want: []want{{vouch.Passed, "signed by", nil}}},
		{name: "revoked certificate", signs: []signing{f.revoked.sign(signing{})}, verifier: "strict",
			want: []want{{vouch.Failed, "certificate revoked", map[string]any{"check": "revocation"}}}},
		{name: "revoked certificate under permissive", signs: []signing{f.revoked.sign(signing{})}, verifier: "permissive",
			want: []want{{vouch.Passed, "logged only, not enforced (level permissive): certificate revoked", nil}}},
		{name: "CRL checked, not revoked", signs: []signing{f.crlChecked.sign(signing{})}, verifier: "strict",
			want: []want{{vouch.Passed, "signed by", nil}}},
		{name: "revocation endpoint unreachable", signs: []signing{f.unreachable.sign(signing{})}, verifier: "strict",
			want: []want{{vouch.Errored, "revocation status unknown", nil}}},
		{name: "signature for another artifact", signs: []signing{f.good.sign(signing{signOther: true})}, verifier: "strict",
			want: []want{{vouch.Failed, "signature is for another artifact (digest mismatch)", nil}}},
		{name: "audit logs an untrusted signer", signs: []signing{f.impostor.sign(signing{})}, verifier: "audit",
			want: []want{{vouch.Passed, "logged only", map[string]any{"audit": true, "level": "audit"}}}},
		{name: "skip", signs: []signing{f.impostor.sign(signing{})}, verifier: "skip",
			want: []want{{vouch.Skipped, "skips signature verification", nil}}},
		{name: "scope applies", repo: "notation/scoped", signs: []signing{f.good.sign(signing{})}, verifier: "scoped",
			want: []want{{vouch.Passed, "signed by", nil}}},
		{name: "scope does not apply", repo: "notation/other", signs: []signing{f.good.sign(signing{})}, verifier: "scoped",
			want: []want{{vouch.Failed, "no trust policy applies to", nil}}},
		{name: "signed SBOM", sbom: true, signs: []signing{f.good.sign(signing{})}, verifier: "strict",
			want: []want{{vouch.Passed, "signed by", nil}}},
		{name: "unsupported envelope media type", signs: []signing{{mediaType: "application/pgp-signature", junk: []byte("sig")}}, verifier: "strict",
			want: []want{{vouch.Failed, `unsupported envelope media type "application/pgp-signature"`, nil}}},
		{name: "corrupt envelope", signs: []signing{{mediaType: jws, junk: []byte(`{"payload":"x"}`)}}, verifier: "strict",
			want: []want{{vouch.Failed, "signature integrity check failed", map[string]any{"check": "integrity"}}}},
	}
}

// expiringCases are signed with a certificate that expires seconds after
// newShortLived makes it: call it right before setting them up.
func (f *pkiFixture) expiringCases() []verifyCase {
	cose := notation.MediaTypeCOSE
	return []verifyCase{
		{name: "expired certificate, no timestamp", signs: []signing{f.shortLived.sign(signing{})}, verifier: "strict",
			want: []want{{vouch.Failed, "certificate expired", map[string]any{"check": "authenticTimestamp"}}}},
		{name: "expired certificate, no timestamp, tsa policy", signs: []signing{f.shortLived.sign(signing{})}, verifier: "tsa",
			want: []want{{vouch.Failed, "has no timestamp countersignature", nil}}},
		{name: "expired certificate, timestamped, JWS", signs: []signing{f.shortLived.sign(signing{tsa: f.tsa})}, verifier: "tsa",
			want: []want{{vouch.Passed, "signed by", map[string]any{"timestampVerified": true, "timestampAuthority": "CN=Vouch Test TSA,O=Vouch Test,ST=WA,C=US"}}}},
		{name: "expired certificate, timestamped, COSE", signs: []signing{f.shortLived.sign(signing{tsa: f.tsa, mediaType: cose})}, verifier: "tsa",
			want: []want{{vouch.Passed, "signed by", map[string]any{"timestampVerified": true, "envelope": "cose"}}}},
		{name: "expired certificate, timestamp not trusted by policy", signs: []signing{f.shortLived.sign(signing{tsa: f.tsa})}, verifier: "strict",
			want: []want{{vouch.Failed, "names no tsa trust store", map[string]any{"timestampVerified": false}}}},
		{name: "expired certificate under permissive", signs: []signing{f.shortLived.sign(signing{})}, verifier: "permissive",
			want: []want{{vouch.Passed, "logged only", nil}}},
	}
}

// setUp pushes a case's image and signs it in reg, the way notation users
// do: notation.Sign with notation-go's registry repository, which pushes an
// OCI 1.1 referrer (and, on a registry without the referrers API, oras-go
// keeps the referrers tag).
func setUp(ctx context.Context, t *testing.T, reg *testbed.Registry, c verifyCase) vouch.Reference {
	t.Helper()
	repoName := c.repo
	if repoName == "" {
		repoName = "notation/demo"
	}
	p := testbed.NewPusher(t, reg.Host, repoName)
	img := p.Image("", "image for "+c.name)
	target := img
	if c.sbom {
		target = p.Attach(img, "application/spdx+json", "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3","name":"`+c.name+`"}`))
	}
	sigRepo := notationregistry.NewRepository(p.Repo)
	for i, s := range c.signs {
		mediaType := s.mediaType
		if mediaType == "" {
			mediaType = notation.MediaTypeJWS
		}
		if s.junk != nil {
			p.Attach(target, notation.ArtifactType, mediaType, s.junk)
			continue
		}
		sgn, err := signer.NewGenericSigner(s.key, s.chain)
		if err != nil {
			t.Fatal(err)
		}
		opts := notationgo.SignerSignOptions{SignatureMediaType: mediaType, ExpiryDuration: s.expiry}
		if s.tsa != nil {
			ts, err := tspclient.NewHTTPTimestamper(nil, s.tsa.url)
			if err != nil {
				t.Fatal(err)
			}
			opts.Timestamper, opts.TSARootCAs = ts, s.tsa.roots()
		}
		if s.signOther {
			other := p.Image("", fmt.Sprintf("another image for %s #%d", c.name, i))
			sig, _, err := sgn.Sign(ctx, other, opts)
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			if _, _, err := sigRepo.PushSignature(ctx, mediaType, sig, target, nil); err != nil {
				t.Fatalf("push signature: %v", err)
			}
			continue
		}
		ref := reg.Host + "/" + repoName + "@" + target.Digest.String()
		if _, err := notationgo.Sign(ctx, sgn, sigRepo, notationgo.SignOptions{SignerSignOptions: opts, ArtifactReference: ref}); err != nil {
			t.Fatalf("notation.Sign %s: %v", c.name, err)
		}
	}
	ref, err := vouch.ParseReference(reg.Host + "/" + repoName + "@" + img.Digest.String())
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// allow is a policy that allows everything: the tests read the results.
var allow = vouch.PolicyFunc(func(context.Context, vouch.Reference, *vouch.Node) (vouch.Decision, error) {
	return vouch.Decision{Verdict: vouch.Allowed, Reason: "test"}, nil
})

func TestVerifier(t *testing.T) {
	ctx := context.Background()
	regs := testbed.Both(t)
	f := newPKIFixture(t)
	cases := f.cases()
	subjects := make([][]vouch.Reference, len(regs))
	for i, reg := range regs {
		for _, c := range cases {
			subjects[i] = append(subjects[i], setUp(ctx, t, reg, c))
		}
	}
	f.newShortLived(t)
	expiring := f.expiringCases()
	for i, reg := range regs {
		for _, c := range expiring {
			subjects[i] = append(subjects[i], setUp(ctx, t, reg, c))
		}
	}
	t.Logf("signed with the short-lived certificate in %s", time.Since(f.shortLivedUntil.Add(-shortLife)))
	cases = append(cases, expiring...)
	// Let the short-lived certificate expire (x509 keeps whole seconds).
	time.Sleep(time.Until(f.shortLivedUntil.Truncate(time.Second).Add(1100 * time.Millisecond)))

	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}

	for i, reg := range regs {
		verifiers := f.verifiers(t, reg.Host)
		t.Run(reg.Name, func(t *testing.T) {
			for j, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{verifiers[c.verifier]}, Policy: allow}
					report, err := exec.Verify(ctx, subjects[i][j])
					if err != nil {
						t.Fatal(err)
					}
					checkResults(t, signatureResults(report.Root), c.want)
				})
			}
		})
	}
}

// signatureResults collects the results on every signature node below root.
func signatureResults(root *vouch.Node) []vouch.Result {
	var out []vouch.Result
	root.Walk(func(n *vouch.Node, _ int) {
		if n.ArtifactType == notation.ArtifactType {
			out = append(out, n.Results...)
		}
	})
	return out
}

// checkResults matches results to wants, in any order.
func checkResults(t *testing.T, got []vouch.Result, wants []want) {
	t.Helper()
	for _, r := range got {
		t.Logf("%s: %s\n    %v", r.Outcome, r.Reason, r.Details)
	}
	if len(got) != len(wants) {
		t.Fatalf("got %d results, want %d: %+v", len(got), len(wants), got)
	}
	used := make([]bool, len(got))
	for _, w := range wants {
		found := false
		for k, r := range got {
			if used[k] || r.Outcome != w.outcome || !strings.Contains(r.Reason, w.reason) || !hasDetails(r.Details, w.details) {
				continue
			}
			used[k], found = true, true
			if r.Verifier != notation.DefaultName {
				t.Errorf("verifier name %q", r.Verifier)
			}
			break
		}
		if !found {
			t.Errorf("no result with outcome %s, reason containing %q and details %v among:", w.outcome, w.reason, w.details)
			for _, r := range got {
				t.Errorf("  %s: %s %v", r.Outcome, r.Reason, r.Details)
			}
		}
	}
}

func hasDetails(got, want map[string]any) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
