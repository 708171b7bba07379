package plugin_test

import (
	"strings"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/verifier/plugin"
)

func TestParseResponse(t *testing.T) {
	cases := []struct {
		name, out string
		want      vouch.Outcome
		reason    string // the result's reason, or the parse error
	}{
		{"passed", `{"version":"vouch.plugin/v1","outcome":"passed"}`, vouch.Passed, "the plugin says passed"},
		{"failed", `{"version":"vouch.plugin/v1","outcome":"failed","reason":"GPL-3.0-only is not allowed","details":{"n":1}}`, vouch.Failed, "GPL-3.0-only is not allowed"},
		{"skipped", ` {"version":"vouch.plugin/v1","outcome":"skipped","reason":"not an SPDX document"}` + "\n", vouch.Skipped, "not an SPDX document"},
		{"error", `{"version":"vouch.plugin/v1","outcome":"error","reason":"license server unreachable"}`, vouch.Errored, "license server unreachable"},
		{"unknown members are ignored", `{"version":"vouch.plugin/v1","outcome":"passed","reason":"ok","extra":[1,2]}`, vouch.Passed, "ok"},
		{"control characters", `{"version":"vouch.plugin/v1","outcome":"failed","reason":"a\nb\u001b[2Jc\u2028d"}`, vouch.Failed, "a b [2Jc d"},
		{"long reason is cut", `{"version":"vouch.plugin/v1","outcome":"failed","reason":"` + strings.Repeat("é", 3000) + `"}`, vouch.Failed, strings.Repeat("é", 2048) + "…"},

		{"empty", "", "", "no response on standard output"},
		{"not an object", `["version"]`, "", "the output is not a JSON object"},
		{"truncated", `{"version":"vouch.plugin/v1","outcome":"pa`, "", "the output is not a JSON response"},
		{"two documents", `{"version":"vouch.plugin/v1","outcome":"passed"}{}`, "", "more after the JSON response"},
		{"no version", `{"outcome":"passed"}`, "", "the response has no version; vouch speaks vouch.plugin/v1"},
		{"wrong version", `{"version":"vouch.plugin/v2","outcome":"passed"}`, "", `the response is version "vouch.plugin/v2"`},
		{"version not a string", `{"version":1,"outcome":"passed"}`, "", "not a JSON response"},
		{"no outcome", `{"version":"vouch.plugin/v1"}`, "", "no outcome"},
		{"unknown outcome", `{"version":"vouch.plugin/v1","outcome":"allowed"}`, "", `outcome "allowed" is not passed, failed, skipped or error`},
		{"failed without reason", `{"version":"vouch.plugin/v1","outcome":"failed","reason":"  "}`, "", "gives no reason"},
		{"details not an object", `{"version":"vouch.plugin/v1","outcome":"passed","details":[1]}`, "", "details are not a JSON object"},
		{"too deep", `{"version":"vouch.plugin/v1","outcome":"passed","details":{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}}`, "", "nested deeper than 32"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := plugin.ParseResponse([]byte(c.out))
			if c.want == "" {
				if err == nil || !strings.Contains(err.Error(), c.reason) {
					t.Fatalf("err = %v, want one containing %q", err, c.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := resp.Result()
			if got.Outcome != c.want || got.Reason != c.reason {
				t.Fatalf("got %s %q, want %s %q", got.Outcome, got.Reason, c.want, c.reason)
			}
		})
	}
}
