package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
)

// TestNotationCLIAgreement signs with the real notation CLI (1.3.2) in both
// test registries and checks that `vouch verify` gives the verdict
// `notation verify` gives, case by case, reading the same trust policy and
// trust stores.
func TestNotationCLIAgreement(t *testing.T) {
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			home := t.TempDir()
			env := []string{"XDG_CONFIG_HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, "cache"), "NOTATION_EXPERIMENTAL="}
			notation := func(args ...string) (string, error) {
				return testbed.RunErr(env, testbed.Bin(t, "notation"), args...)
			}
			mustNotation := func(args ...string) {
				t.Helper()
				if out, err := notation(args...); err != nil {
					t.Fatalf("notation %s: %v\n%s", strings.Join(args, " "), err, out)
				}
			}
			// Two keys: "trusted" is in the trust store, "rogue" is not.
			mustNotation("cert", "generate-test", "--default", "trusted.example")
			mustNotation("cert", "generate-test", "rogue.example")
			if out, err := notation("cert", "delete", "--type", "ca", "--store", "rogue.example", "--all", "--yes"); err != nil {
				t.Fatalf("notation cert delete: %v\n%s", err, out)
			}
			confDir := filepath.Join(home, "notation")
			policyFor := func(name, level, scope, identity string) string {
				doc := fmt.Sprintf(`{"version":"1.0","trustPolicies":[{"name":%q,"registryScopes":[%q],"signatureVerification":{"level":%q},"trustStores":["ca:trusted.example"],"trustedIdentities":[%q]}]}`,
					name, scope, level, identity)
				path := filepath.Join(home, name+".json")
				if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
					t.Fatal(err)
				}
				return path
			}

			p := testbed.NewPusher(t, reg.Host, "e2e/app")
			signed := p.Image("signed", "signed")
			p.Image("unsigned", "unsigned")
			rogue := p.Image("rogue", "rogue")
			ref := func(tag string) string { return reg.Host + "/e2e/app:" + tag }
			mustNotation("sign", "--insecure-registry", fmt.Sprintf("%s/e2e/app@%s", reg.Host, signed.Digest))
			mustNotation("sign", "--insecure-registry", "--key", "rogue.example", fmt.Sprintf("%s/e2e/app@%s", reg.Host, rogue.Digest))

			repo := reg.Host + "/e2e/app"
			strict := policyFor("strict", "strict", "*", "*")
			tests := []struct {
				name, tag, policy string
				allowed           bool
				reason            string
			}{
				{"trusted signer", "signed", strict, true, ""},
				{"unsigned", "unsigned", strict, false, "no verified referrer"},
				{"untrusted signer", "rogue", strict, false, "untrusted"},
				{"identity mismatch", "signed", policyFor("identity", "strict", "*", "x509.subject: C=US, ST=WA, O=Someone Else, CN=someone.else"), false, "identity"},
				{"audit level logs and allows", "rogue", policyFor("audit", "audit", "*", "*"), true, ""},
				{"scope covers this repository", "signed", policyFor("scoped", "strict", repo, "*"), true, ""},
				{"scope covers another repository", "signed", policyFor("other", "strict", reg.Host+"/elsewhere", "*"), false, "no trust policy"},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					digest := map[string]string{"signed": signed.Digest.String(), "rogue": rogue.Digest.String()}[tt.tag]
					target := ref(tt.tag)
					if digest != "" {
						target = fmt.Sprintf("%s/e2e/app@%s", reg.Host, digest)
					}
					mustNotation("policy", "import", "--force", tt.policy)
					out, err := notation("verify", "--insecure-registry", target)
					if notationOK := err == nil; notationOK != tt.allowed {
						t.Fatalf("notation verify: ok=%v, want %v\n%s", notationOK, tt.allowed, out)
					}
					code, stdout, stderr := vouchRun(t, "verify", "-o", "json", "--plain-http",
						"--notation-trust-policy", tt.policy, "--notation-config-dir", confDir, ref(tt.tag))
					var doc vouch.Reports
					if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
						t.Fatalf("exit %d: %v\n%s%s", code, err, stdout, stderr)
					}
					allowed := code == exitAllowed && doc.Verdict == vouch.Allowed
					if allowed != tt.allowed {
						t.Fatalf("vouch: exit %d, verdict %s (%s); notation says allowed=%v", code, doc.Verdict, doc.Subjects[0].Reason, tt.allowed)
					}
					if !tt.allowed && !strings.Contains(stdout, tt.reason) {
						t.Fatalf("vouch's report does not say %q:\n%s", tt.reason, stdout)
					}
				})
			}

			// The first-time user's command: trust the certificate notation
			// just generated, no config and no trust policy.
			cert := filepath.Join(confDir, "localkeys", "trusted.example.crt")
			code, out, stderr := vouchRun(t, "verify", "--notation-cert", cert, "--plain-http", ref("signed"))
			if code != exitAllowed {
				t.Fatalf("--notation-cert on a signed image: exit %d\n%s%s", code, out, stderr)
			}
			code, out, _ = vouchRun(t, "verify", "--notation-cert", cert, "--plain-http", ref("rogue"))
			if code != exitDenied {
				t.Fatalf("--notation-cert on a rogue-signed image: exit %d\n%s", code, out)
			}
		})
	}
}
