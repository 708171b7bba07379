package schema_test

import (
	"fmt"
	"log"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/verifier/schema"
)

// A schema named by its URL and pinned to local files: the schema itself
// and the one its "$ref"s name. Nothing is fetched from the network.
func Example() {
	v, err := schema.New("report-schema", schema.Config{
		ArtifactTypes: []string{"application/vnd.example.report+json"},
		SchemaURL:     "https://schemas.example.com/report.json",
		SchemaFile:    "testdata/report.json",
		Resources: []schema.Resource{
			{URL: "https://schemas.example.com/common/package.json", File: "testdata/common/package.json"},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	// Give it to an Executor, which calls it on every referrer of that type.
	exec := &vouch.Executor{Verifiers: []vouch.Verifier{v}}
	fmt.Println(len(exec.Verifiers), v.Name(), v.Handles("application/vnd.example.report+json"))
	// Output: 1 report-schema true
}
