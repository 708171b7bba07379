package notation_test

import (
	"fmt"
	"log"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/verifier/notation"
)

// A verifier configured as notation is, from a Notation configuration
// directory: trustpolicy.json and truststore/x509/ca/example/root.pem.
func Example() {
	policy, err := notation.LoadTrustPolicy("testdata/notation/trustpolicy.json")
	if err != nil {
		log.Fatal(err)
	}
	v, err := notation.New(notation.Options{
		TrustPolicy: policy,
		TrustStores: notation.TrustStores{Dir: "testdata/notation"},
	})
	if err != nil {
		log.Fatal(err)
	}
	// Give it to an Executor, which calls it on every signature it finds.
	exec := &vouch.Executor{Verifiers: []vouch.Verifier{v}}
	fmt.Println(len(exec.Verifiers), v.Name(), v.Handles(notation.ArtifactType))
	// Output: 1 notation true
}

// The trust behind `vouch verify --notation-cert FILE`: one statement for
// every repository, level strict, any identity under the certificate.
func ExampleQuickTrustPolicy() {
	v, err := notation.New(notation.Options{
		TrustPolicy: notation.QuickTrustPolicy("cli"),
		TrustStores: notation.TrustStores{Files: map[string][]string{
			"ca:cli":               {"testdata/notation/truststore/x509/ca/example/root.pem"},
			"signingAuthority:cli": {"testdata/notation/truststore/x509/ca/example/root.pem"},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(v.Name())
	// Output: notation
}
