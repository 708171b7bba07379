package vulnreport_test

import (
	"fmt"
	"log"
	"os"
	"time"

	"github.com/vouch-project/vouch/verifier/vulnreport"
)

// A verifier as the config file's `vulnreport:` section builds it, applied
// to a report read from a file (the Executor reads them from registries).
func Example() {
	v, err := vulnreport.New("vulns", vulnreport.Config{
		DeniedSeverities: []string{"critical"},
		DeniedCVEs:       []string{"CVE-2021-44228"},
		MaxAge:           "7d",
	})
	if err != nil {
		log.Fatal(err)
	}
	data, err := os.ReadFile("testdata/grype-log4j.sarif")
	if err != nil {
		log.Fatal(err)
	}
	rep, err := vulnreport.ParseSARIF(data)
	if err != nil {
		log.Fatal(err)
	}
	// Grype records no scan time: the artifact manifest's annotation gives it.
	annotations := map[string]string{"org.opencontainers.image.created": "2026-11-24T09:00:00Z"}
	res := v.Check(rep, annotations, time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	fmt.Println(res.Outcome)
	fmt.Println(res.Reason)
	fmt.Println(res.Details["severities"])
	// Output:
	// failed
	// grype 0.104.0 report of 2026-11-24T09:00:00Z: 1 finding denied: CVE-2021-44228 (denied id, critical 10.0, log4j-core 2.14.1)
	// map[critical:1 high:0 low:1 medium:0 unknown:0]
}
