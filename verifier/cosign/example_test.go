package cosign_test

import (
	"encoding/json"
	"fmt"

	"github.com/vouch-project/vouch/verifier/cosign"
)

// The CLI's --cosign-key builds its verifier this way: trust one key, do
// not require transparency-log evidence, check no attestations.
func ExampleKeyConfig() {
	v, err := cosign.New("", cosign.KeyConfig([]string{"testdata/cosign.pub"}))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(v.Name())
	fmt.Println("signatures:", v.Handles(cosign.SignatureType))
	fmt.Println("bundles:", v.Handles(cosign.BundleV03Type))
	fmt.Println("attestations:", v.Handles(cosign.AttestationType))
	// Output:
	// cosign
	// signatures: true
	// bundles: true
	// attestations: false
}

// A keyless configuration as vouch's config file holds it (in JSON here):
// GitHub Actions workflows of one organisation, checked against a Sigstore
// trusted root, with SLSA provenance from GitHub's builder.
func ExampleConfig_Validate() {
	var c cosign.Config
	err := json.Unmarshal([]byte(`{
	  "trustedRoot": "trusted_root.json",
	  "identities": [{
	    "issuer": "https://token.actions.githubusercontent.com",
	    "subjectRegExp": "^https://github\\.com/acme/"
	  }],
	  "attestations": {
	    "predicates": [{
	      "type": "slsaprovenance1",
	      "fields": {"runDetails.builder.id": "https://github.com/actions/runner/github-hosted"}
	    }]
	  }
	}`), &c)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Validate("verifiers[0].cosign"))
	c.Identities = nil
	fmt.Println(c.Validate("verifiers[0].cosign"))
	// Output:
	// <nil>
	// verifiers[0].cosign.identities: required to trust certificates (keyless signatures): name the OIDC issuer and subject of the signers
}
