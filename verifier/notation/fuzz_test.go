package notation

import (
	"os"
	"testing"
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
