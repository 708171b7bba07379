package notation_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
	"github.com/vouch-project/vouch/store/registry"
	"github.com/vouch-project/vouch/verifier/notation"
)

// TestNotationCLI verifies what the real notation CLI pushes, in JWS and
// COSE, against notation's own configuration directory: the test key that
// `notation cert generate-test` adds to its trust store, and a
// trustpolicy.json that `notation verify` reads too.
func TestNotationCLI(t *testing.T) {
	ctx := context.Background()
	xdg := t.TempDir()
	env := []string{"XDG_CONFIG_HOME=" + xdg, "XDG_CACHE_HOME=" + t.TempDir()}
	testbed.Run(t, env, "notation", "cert", "generate-test", "--default", "vouch.test")
	configDir := filepath.Join(xdg, "notation")
	policy := `{"version":"1.0","trustPolicies":[{"name":"cli","registryScopes":["*"],
	  "signatureVerification":{"level":"strict"},"trustStores":["ca:vouch.test"],"trustedIdentities":["*"]}]}`
	if err := os.WriteFile(filepath.Join(configDir, "trustpolicy.json"), []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	doc, err := notation.LoadTrustPolicy(filepath.Join(configDir, "trustpolicy.json"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := notation.New(notation.Options{TrustPolicy: doc, TrustStores: notation.TrustStores{Dir: configDir}})
	if err != nil {
		t.Fatal(err)
	}
	store, err := registry.New(registry.Options{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	exec := &vouch.Executor{Store: store, Verifiers: []vouch.Verifier{v}, Policy: allow}

	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			img := testbed.NewPusher(t, reg.Host, "notation/cli").Image("", "signed by the notation CLI on "+reg.Name)
			ref := reg.Host + "/notation/cli@" + img.Digest.String()
			testbed.Run(t, env, "notation", "sign", "--insecure-registry", ref)
			testbed.Run(t, env, "notation", "sign", "--insecure-registry", "--signature-format", "cose", ref)
			testbed.Run(t, env, "notation", "verify", "--insecure-registry", ref)

			report, err := exec.Verify(ctx, testbed.Ref(t, ref))
			if err != nil {
				t.Fatal(err)
			}
			checkResults(t, signatureResults(report.Root), []want{
				{vouch.Passed, "signed by", map[string]any{"envelope": "jws", "signer": "CN=vouch.test,O=Notary,L=Seattle,ST=WA,C=US"}},
				{vouch.Passed, "signed by", map[string]any{"envelope": "cose"}},
			})
		})
	}
}
