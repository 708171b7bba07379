package plugin_test

import (
	"fmt"

	"github.com/vouch-project/vouch/verifier/plugin"
)

// What vouch makes of a plugin's answer.
func ExampleParseResponse() {
	out := []byte(`{"version":"vouch.plugin/v1","outcome":"failed","reason":"readline@8.2 is GPL-3.0-or-later","details":{"violations":1}}`)
	resp, err := plugin.ParseResponse(out)
	if err != nil {
		fmt.Println(err)
		return
	}
	r := resp.Result()
	fmt.Println(r.Outcome, r.Reason, r.Details["violations"])

	_, err = plugin.ParseResponse([]byte(`{"version":"vouch.plugin/v0","outcome":"passed"}`))
	fmt.Println(err)
	// Output:
	// failed readline@8.2 is GPL-3.0-or-later 1
	// the response is version "vouch.plugin/v0"; vouch speaks vouch.plugin/v1
}
