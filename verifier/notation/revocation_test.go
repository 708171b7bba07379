package notation_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/policy"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/notation"
)

// policyJSON is a trust policy document with one statement for every
// repository, trusting the store ca:acme, at level with the overrides
// given (JSON, or "" for none), or trusting nothing at level skip: written as users write trustpolicy.json,
// and read by notation.ParseTrustPolicy.
func policyJSON(t *testing.T, level, override string) *notation.Options {
	t.Helper()
	sv := fmt.Sprintf(`{"level":%q}`, level)
	if override != "" {
		sv = fmt.Sprintf(`{"level":%q,"override":%s}`, level, override)
	}
	trust := `,"trustStores":["ca:acme"],"trustedIdentities":["*"]`
	if level == "skip" {
		trust = "" // notation-go refuses them with skip
	}
	doc, err := notation.ParseTrustPolicy([]byte(`{"version":"1.0","trustPolicies":[{"name":"acme","registryScopes":["*"],
	  "signatureVerification":`+sv+trust+`}]}`), "test")
	if err != nil {
		t.Fatal(err)
	}
	return &notation.Options{TrustPolicy: doc}
}

// gate verifies subjects with one notation verifier under vouch's default
// policy, which allows a subject only when a signature passed: what `vouch
// verify` does with a notation verifier and no policy section.
type gate struct {
	exec *vouch.Executor
}

func newGate(t *testing.T, v *notation.Verifier) *gate {
	t.Helper()
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	return &gate{exec: &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v}, Policy: policy.Default([]string{v.Name()})}}
}

// check verifies ref and matches the verdict and the signature's one
// result.
func (g *gate) check(ctx context.Context, t *testing.T, ref vouch.Reference, verdict vouch.Verdict, w want) vouch.Result {
	t.Helper()
	report, err := g.exec.Verify(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	results := signatureResults(report.Root)
	checkResults(t, results, []want{w})
	if report.Verdict != verdict {
		t.Fatalf("verdict %s (%s), want %s", report.Verdict, report.Reason, verdict)
	}
	t.Logf("verdict %s: %s", report.Verdict, report.Reason)
	if len(results) == 0 {
		return vouch.Result{}
	}
	return results[0]
}

// indexEntry is a certificate's line in an `openssl ca` index file.
func indexEntry(cert *x509.Certificate, revoked bool) string {
	status, revokedAt := "V", ""
	if revoked {
		status, revokedAt = "R", time.Now().Add(-time.Minute).UTC().Format("060102150405Z")
	}
	serial := fmt.Sprintf("%X", cert.SerialNumber)
	if len(serial)%2 == 1 {
		serial = "0" + serial
	}
	return strings.Join([]string{status, cert.NotAfter.UTC().Format("060102150405Z"), revokedAt, serial, "unknown", "/CN=" + cert.Subject.CommonName}, "\t") + "\n"
}

// TestOCSP checks signing certificates by OCSP against a real responder
// (openssl ocsp, on 127.0.0.1), for signatures that notation-go pushed to a
// distribution registry, under vouch's default policy: a good certificate
// is allowed, a revoked one denied, and when the responder is unreachable
// the verdict fails closed at level strict (revocation enforced) and
// follows the trust policy otherwise.
func TestOCSP(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	ca := newCA(t, "Vouch OCSP Root")
	certFile, keyFile := ca.files(t, dir)
	index := filepath.Join(dir, "index.txt")
	responder := testbed.OCSPResponder(t, testbed.OCSPOptions{CACert: certFile, CAKey: keyFile, Index: index})

	var good, revoked signerKey
	good.key, good.chain = ca.leaf(t, "ocsp good", leafOptions{ocspURL: responder.URL})
	revoked.key, revoked.chain = ca.leaf(t, "ocsp revoked", leafOptions{ocspURL: responder.URL})
	if err := os.WriteFile(index, []byte(indexEntry(good.chain[0], false)+indexEntry(revoked.chain[0], true)), 0o600); err != nil {
		t.Fatal(err)
	}
	// A signer no trust store vouches for, whose certificate names URLs of
	// its choosing: vouch must not call them, even at level audit where
	// notation-go goes on to check revocation after a failed authenticity.
	attacker := newCA(t, "Attacker Root")
	var untrusted signerKey
	untrusted.key, untrusted.chain = attacker.leaf(t, "attacker", leafOptions{ocspURL: responder.URL, crlURL: attacker.crlServer(t)})

	reg := testbed.Distribution(t)
	goodRef := setUp(ctx, t, reg, verifyCase{name: "OCSP good", repo: "ocsp/good", signs: []signing{good.sign(signing{})}})
	revokedRef := setUp(ctx, t, reg, verifyCase{name: "OCSP revoked", repo: "ocsp/revoked", signs: []signing{revoked.sign(signing{})}})
	untrustedRef := setUp(ctx, t, reg, verifyCase{name: "OCSP untrusted", repo: "ocsp/untrusted", signs: []signing{untrusted.sign(signing{})}})

	gates := map[string]*gate{}
	for name, o := range map[string]*notation.Options{
		"strict":                   policyJSON(t, "strict", ""),
		"permissive":               policyJSON(t, "permissive", ""),
		"audit":                    policyJSON(t, "audit", ""),
		"strict, revocation log":   policyJSON(t, "strict", `{"revocation":"log"}`),
		"strict, revocation skip":  policyJSON(t, "strict", `{"revocation":"skip"}`),
		"disableUnsafe":            policyJSON(t, "strict", ""),
		"strict, authenticity log": policyJSON(t, "strict", `{"authenticity":"log"}`),
	} {
		o.TrustStores = notation.TrustStores{Inline: map[string][]string{"ca:acme": {ca.pem()}}}
		o.Revocation.DisableUnsafe = name == "disableUnsafe"
		v, err := notation.New(*o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		gates[name] = newGate(t, v)
	}

	type ocspCase struct {
		name, gate string
		ref        vouch.Reference
		verdict    vouch.Verdict
		want       want
		// asks tells whether the responder must be asked.
		asks bool
	}
	revocationCheck := map[string]any{"check": "revocation"}
	up := []ocspCase{
		{"good", "strict", goodRef, vouch.Allowed, want{vouch.Passed, "signed by", map[string]any{"level": "strict"}}, true},
		{"revoked", "strict", revokedRef, vouch.Denied, want{vouch.Failed, "certificate revoked", revocationCheck}, true},
		{"revoked, permissive", "permissive", revokedRef, vouch.Allowed, want{vouch.Passed, "logged only, not enforced (level permissive): certificate revoked", nil}, true},
		{"revoked, audit", "audit", revokedRef, vouch.Allowed, want{vouch.Passed, "certificate revoked", map[string]any{"audit": true}}, true},
		{"revoked, override revocation log", "strict, revocation log", revokedRef, vouch.Allowed, want{vouch.Passed, "logged only, not enforced (level strict, override revocation: log): certificate revoked", nil}, true},
		{"revoked, override revocation skip", "strict, revocation skip", revokedRef, vouch.Allowed, want{vouch.Passed, "(level strict, override revocation: skip)", map[string]any{"level": "strict"}}, false},
		{"revoked, disableUnsafe", "disableUnsafe", revokedRef, vouch.Allowed, want{vouch.Passed, "signed by", nil}, false},
		{"untrusted chain, strict", "strict", untrustedRef, vouch.Denied, want{vouch.Failed, "untrusted signer", map[string]any{"check": "authenticity"}}, false},
		{"untrusted chain, audit", "audit", untrustedRef, vouch.Allowed, want{vouch.Passed, "revocation status unknown: not checked: no trust store holds a certificate of the chain", map[string]any{"audit": true}}, false},
		// Revocation enforced, and not checked: fail closed.
		{"untrusted chain, override authenticity log", "strict, authenticity log", untrustedRef, vouch.Denied, want{vouch.Errored, "revocation status unknown: not checked", map[string]any{"check": "revocation"}}, false},
	}
	down := []ocspCase{
		{"unreachable", "strict", goodRef, vouch.Denied, want{vouch.Errored, "revocation status unknown (OCSP " + responder.URL, revocationCheck}, false},
		{"unreachable, permissive", "permissive", goodRef, vouch.Allowed, want{vouch.Passed, "logged only, not enforced (level permissive): revocation status unknown", nil}, false},
		{"unreachable, audit", "audit", goodRef, vouch.Allowed, want{vouch.Passed, "revocation status unknown", map[string]any{"audit": true}}, false},
		{"unreachable, override revocation log", "strict, revocation log", goodRef, vouch.Allowed, want{vouch.Passed, "logged only, not enforced (level strict, override revocation: log): revocation status unknown", nil}, false},
		{"unreachable, override revocation skip", "strict, revocation skip", goodRef, vouch.Allowed, want{vouch.Passed, "(level strict, override revocation: skip)", nil}, false},
	}
	run := func(cases []ocspCase) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := responder.Requests()
				gates[c.gate].check(ctx, t, c.ref, c.verdict, c.want)
				if asked := responder.Requests() > before; asked != c.asks {
					t.Errorf("responder asked: %v, want %v", asked, c.asks)
				}
			})
		}
	}
	run(up)
	if n := attacker.crlFetches.Load(); n != 0 {
		t.Errorf("the untrusted certificate's CRL was downloaded %d times", n)
	}
	responder.Close()
	run(down)
}

// TestCRLCache verifies signatures whose certificates name a CRL
// distribution point on 127.0.0.1 and counts the CRL downloads: a CRL is
// fetched once and then served from the cache, in memory by default and on
// disk with Revocation.CRLCacheDir (there shared with a second Verifier, as
// with another process), and fetched again once its NextUpdate has passed.
func TestCRLCache(t *testing.T) {
	ctx := t.Context()
	reg := testbed.Distribution(t)
	type fixture struct {
		ca            *testCA
		good, revoked vouch.Reference
	}
	newFixture := func(t *testing.T, validity time.Duration) *fixture {
		ca := newCA(t, "Vouch CRL Root "+t.Name())
		ca.crlValidity = validity
		url := ca.crlServer(t)
		var good, revoked signerKey
		good.key, good.chain = ca.leaf(t, "crl good", leafOptions{crlURL: url})
		revoked.key, revoked.chain = ca.leaf(t, "crl revoked", leafOptions{crlURL: url})
		ca.revoke(revoked.chain[0])
		repo := "crl/" + strings.ToLower(strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()))
		return &fixture{
			ca:      ca,
			good:    setUp(ctx, t, reg, verifyCase{name: "CRL good", repo: repo + "/good", signs: []signing{good.sign(signing{})}}),
			revoked: setUp(ctx, t, reg, verifyCase{name: "CRL revoked", repo: repo + "/revoked", signs: []signing{revoked.sign(signing{})}}),
		}
	}
	newVerifier := func(t *testing.T, f *fixture, cacheDir string) *gate {
		o := policyJSON(t, "strict", "")
		o.TrustStores = notation.TrustStores{Inline: map[string][]string{"ca:acme": {f.ca.pem()}}}
		o.Revocation.CRLCacheDir = cacheDir
		v, err := notation.New(*o)
		if err != nil {
			t.Fatal(err)
		}
		return newGate(t, v)
	}
	good := want{vouch.Passed, "signed by", nil}
	revoked := want{vouch.Failed, "certificate revoked", map[string]any{"check": "revocation"}}
	fetches := func(t *testing.T, f *fixture, n int64) {
		t.Helper()
		if got := f.ca.crlFetches.Load(); got != n {
			t.Fatalf("the CRL was downloaded %d times, want %d", got, n)
		}
	}

	t.Run("memory", func(t *testing.T) {
		f := newFixture(t, time.Hour)
		g := newVerifier(t, f, "")
		g.check(ctx, t, f.good, vouch.Allowed, good)
		fetches(t, f, 1)
		g.check(ctx, t, f.good, vouch.Allowed, good)
		g.check(ctx, t, f.revoked, vouch.Denied, revoked)
		fetches(t, f, 1)
		// Another Verifier has its own memory cache.
		newVerifier(t, f, "").check(ctx, t, f.revoked, vouch.Denied, revoked)
		fetches(t, f, 2)
	})
	t.Run("file", func(t *testing.T) {
		f := newFixture(t, time.Hour)
		dir := filepath.Join(t.TempDir(), "crl")
		g := newVerifier(t, f, dir)
		g.check(ctx, t, f.good, vouch.Allowed, good)
		g.check(ctx, t, f.revoked, vouch.Denied, revoked)
		fetches(t, f, 1)
		files, err := os.ReadDir(dir)
		if err != nil || len(files) != 1 {
			t.Fatalf("cache folder holds %d files (%v), want the one CRL", len(files), err)
		}
		newVerifier(t, f, dir).check(ctx, t, f.good, vouch.Allowed, good)
		fetches(t, f, 1)
	})
	t.Run("until NextUpdate", func(t *testing.T) {
		const validity = 2 * time.Second
		f := newFixture(t, validity)
		g := newVerifier(t, f, "")
		g.check(ctx, t, f.good, vouch.Allowed, good)
		fetched := time.Now()
		g.check(ctx, t, f.revoked, vouch.Denied, revoked)
		fetches(t, f, 1)
		time.Sleep(time.Until(fetched.Add(validity + 500*time.Millisecond)))
		g.check(ctx, t, f.revoked, vouch.Denied, revoked)
		fetches(t, f, 2)
	})
}
