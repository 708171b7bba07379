package sbom_test

import (
	"fmt"
	"log"
	"os"
	"time"

	"github.com/vouch-project/vouch/verifier/sbom"
)

// A verifier as the config file's `sbom:` section builds it, applied to an
// SBOM read from a file (the Executor reads them from registries).
func Example() {
	v, err := sbom.New("licenses", sbom.Config{
		DeniedLicenses: []string{"GPL-3.0-only", "AGPL-3.0-or-later"},
		DeniedPackages: []string{"log4j-core@<2.17.1"},
		MaxAge:         "30d",
	})
	if err != nil {
		log.Fatal(err)
	}
	data, err := os.ReadFile("testdata/app.cdx.json")
	if err != nil {
		log.Fatal(err)
	}
	doc, err := sbom.ParseCycloneDX(data)
	if err != nil {
		log.Fatal(err)
	}
	res := v.Check(doc, time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC))
	fmt.Println(res.Outcome)
	fmt.Println(res.Reason)
	// Output:
	// failed
	// CycloneDX-1.6 SBOM of 9 components: 4 of 9 components fail the policy: readline 8.2.10-r0 (denied license GPL-3.0-or-later), two-licenses 1.1 (denied license GPL-3.0-only), named-license 0.9 (unparsable license "The Apache Software License, Version 2.0": unexpected "Apache" after a complete expression), and 1 more
}

// A license expression is allowed when some choice through its ORs avoids
// every denied license.
func ExampleParseLicense() {
	l, err := sbom.ParseLicense("(mit or GPL-3.0-only) and Apache-2.0")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(l)
	fmt.Println(l.Licenses())
	_, err = sbom.ParseLicense("GPL v3")
	fmt.Println(err)
	// Output:
	// (mit OR GPL-3.0-only) AND Apache-2.0
	// [mit GPL-3.0-only Apache-2.0]
	// unexpected "v3" after a complete expression
}
