package notation_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/verifier/notation"
)

// TestTrustPolicyLevels checks the verification levels and the overrides
// of the Notary Project trust policy (trust-store-trust-policy.md,
// "Signature Verification details") with real signatures in a distribution
// registry, under vouch's default policy: an expired signature, a signer
// that no trust store vouches for, and a corrupt envelope, each denied at
// level strict and allowed only where the level or an override logs the
// check instead of enforcing it; integrity is enforced at every level but
// skip, and a skipped signature vouches for nothing.
func TestTrustPolicyLevels(t *testing.T) {
	ctx := t.Context()
	trusted, other := newCA(t, "Vouch Levels Root"), newCA(t, "Other Root")
	var good, impostor signerKey
	good.key, good.chain = trusted.leaf(t, "levels signer", leafOptions{})
	impostor.key, impostor.chain = other.leaf(t, "impostor", leafOptions{})

	reg := testbed.Distribution(t)
	const validity = time.Second
	expiredRef := setUp(ctx, t, reg, verifyCase{name: "expired signature", repo: "levels/expired", signs: []signing{good.sign(signing{expiry: validity})}})
	signedAt := time.Now()
	impostorRef := setUp(ctx, t, reg, verifyCase{name: "untrusted signer", repo: "levels/impostor", signs: []signing{impostor.sign(signing{})}})
	corruptRef := setUp(ctx, t, reg, verifyCase{name: "corrupt envelope", repo: "levels/corrupt", signs: []signing{{mediaType: notation.MediaTypeJWS, junk: []byte(`{"payload":"x"}`)}}})
	// The envelope's expiry has whole seconds.
	time.Sleep(time.Until(signedAt.Add(validity + 1100*time.Millisecond)))

	gate := func(t *testing.T, level, override string) *gate {
		o := policyJSON(t, level, override)
		if level != "skip" {
			o.TrustStores = notation.TrustStores{Inline: map[string][]string{"ca:acme": {trusted.pem()}}}
		}
		v, err := notation.New(*o)
		if err != nil {
			t.Fatal(err)
		}
		return newGate(t, v)
	}
	for _, c := range []struct {
		name, level, override string
		ref                   vouch.Reference
		verdict               vouch.Verdict
		want                  want
	}{
		{"expired, strict", "strict", "", expiredRef, vouch.Denied, want{vouch.Failed, "signature expired", map[string]any{"check": "expiry"}}},
		{"expired, strict, override expiry log", "strict", `{"expiry":"log"}`, expiredRef, vouch.Allowed, want{vouch.Passed, "logged only, not enforced (level strict, override expiry: log): signature expired", map[string]any{"level": "strict"}}},
		{"expired, permissive", "permissive", "", expiredRef, vouch.Allowed, want{vouch.Passed, "logged only, not enforced (level permissive): signature expired", nil}},
		{"expired, audit", "audit", "", expiredRef, vouch.Allowed, want{vouch.Passed, "logged only, not enforced (level audit): signature expired", map[string]any{"audit": true}}},
		{"expired, permissive, override expiry enforce", "permissive", `{"expiry":"enforce"}`, expiredRef, vouch.Denied, want{vouch.Failed, "signature expired", map[string]any{"check": "expiry", "level": "permissive"}}},
		{"expired, skip", "skip", "", expiredRef, vouch.Denied, want{vouch.Skipped, "skips signature verification", nil}},
		{"untrusted, strict", "strict", "", impostorRef, vouch.Denied, want{vouch.Failed, "untrusted signer", map[string]any{"check": "authenticity"}}},
		{"untrusted, permissive", "permissive", "", impostorRef, vouch.Denied, want{vouch.Failed, "untrusted signer", map[string]any{"check": "authenticity"}}},
		{"untrusted, audit", "audit", "", impostorRef, vouch.Allowed, want{vouch.Passed, "logged only, not enforced (level audit): untrusted signer", map[string]any{"audit": true}}},
		{"untrusted, strict, override authenticity log", "strict", `{"authenticity":"log"}`, impostorRef, vouch.Allowed, want{vouch.Passed, "logged only, not enforced (level strict, override authenticity: log): untrusted signer", nil}},
		{"corrupt, audit", "audit", "", corruptRef, vouch.Denied, want{vouch.Failed, "signature integrity check failed", map[string]any{"check": "integrity"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := gate(t, c.level, c.override).check(ctx, t, c.ref, c.verdict, c.want)
			if r.Outcome == vouch.Passed && strings.Contains(r.Reason, "logged only") {
				if logged, _ := r.Details["loggedFailures"].([]string); len(logged) != 1 {
					t.Errorf("loggedFailures = %v, want the one check logged", r.Details["loggedFailures"])
				}
			}
		})
	}

	// What notation-go refuses, vouch refuses when it reads the policy.
	for override, msg := range map[string]string{
		`{"integrity":"log"}`: `"integrity" verification can not be overridden`,
		`{"expiry":"skip"}`:   `"expiry" verification can not be skipped`,
		`{"expiry":"never"}`:  `verification action "never" in custom signature verification is not supported`,
	} {
		_, err := notation.ParseTrustPolicy([]byte(`{"version":"1.0","trustPolicies":[{"name":"acme","registryScopes":["*"],
		  "signatureVerification":{"level":"strict","override":`+override+`},"trustStores":["ca:acme"],"trustedIdentities":["*"]}]}`), "test")
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("override %s: err = %v, want %q", override, err, msg)
		}
	}
}
