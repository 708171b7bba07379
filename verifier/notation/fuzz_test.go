package notation

import (
	"os"
	"strings"
	"testing"
	"unicode"

	"github.com/notaryproject/notation-plugin-framework-go/plugin"
)

// FuzzParseTrustPolicy feeds arbitrary documents to the trust policy
// parser, which reads files users and operators supply.
func FuzzParseTrustPolicy(f *testing.F) {
	seed, err := os.ReadFile("testdata/notation/trustpolicy.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"version":"1.0","trustPolicies":[]}`))
	f.Add([]byte(`{"version":"1.0","trustPolicies":[{"name":"s","registryScopes":["*"],"signatureVerification":{"level":"strict","override":{"revocation":"skip"}},"trustStores":["tsa:t","ca:c"],"trustedIdentities":["x509.subject:C=US, ST=WA, O=X"]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := parseTrustPolicy(data)
		if err != nil {
			return
		}
		if err := doc.Validate(); err != nil {
			t.Fatalf("accepted a document that does not validate: %v", err)
		}
		// Whatever validates must be usable to pick a statement.
		_, _ = doc.GetApplicableTrustPolicy("registry.example/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000000")
		skipRevocation(clonePolicy(doc))
	})
}

// FuzzPluginOutput feeds arbitrary bytes to the readers of a verification
// plugin's standard output and standard error: they must not panic, and
// the error message they take from standard error for a report must be
// bounded and printable.
func FuzzPluginOutput(f *testing.F) {
	f.Add([]byte(`{"verificationResults":{"SIGNATURE_VERIFIER.TRUSTED_IDENTITY":{"success":false,"reason":"no"}},"processedAttributes":["a"]}`))
	f.Add([]byte(`{"name":"p","description":"d","version":"1.0.0","url":"u","supportedContractVersions":["1.0"],"capabilities":["SIGNATURE_VERIFIER.REVOCATION_CHECK"]}`))
	f.Add([]byte(`{"errorCode":"ACCESS_DENIED","errorMessage":"denied\u001b[31m","errorMetadata":{"k":"v"}}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
	f.Add([]byte("Hello! I am not JSON."))
	f.Fuzz(func(t *testing.T, data []byte) {
		var md plugin.GetMetadataResponse
		_ = decodePluginResponse(data, &md)
		var resp plugin.VerifySignatureResponse
		_ = decodePluginResponse(data, &resp)
		msg, ok := pluginErrorMessage(data)
		if !ok {
			if msg != "" {
				t.Fatalf("no error, but message %q", msg)
			}
			return
		}
		if len(msg) > 64+len("…")+len(": ")+maxPluginReason+len("…") {
			t.Fatalf("message of %d bytes", len(msg))
		}
		if i := strings.IndexFunc(msg, unicode.IsControl); i >= 0 {
			t.Fatalf("control character in %q", msg)
		}
	})
}
