package plugin

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/vouch-project/vouch"
)

// FuzzParseResponse feeds arbitrary plugin output to the response parser:
// it must never panic, and whatever it accepts must be a known outcome with
// a bounded, printable reason.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(`{"version":"vouch.plugin/v1","outcome":"passed","reason":"ok","details":{"a":[1,{"b":null}]}}`))
	f.Add([]byte(`{"version":"vouch.plugin/v1","outcome":"failed","reason":"x\u001b[31m\n"}`))
	f.Add([]byte(`{"version":"vouch.plugin/v0","outcome":"passed"}`))
	f.Add([]byte(`{"version":"vouch.plugin/v1","outcome":"error","reason":"\xff\xfe"}`))
	f.Add([]byte(`{"version":"vouch.plugin/v1","outcome":"skipped","details":{"s":"]]]]\""}} `))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := ParseResponse(data)
		if err != nil {
			if resp != nil {
				t.Fatal("a response with an error")
			}
			return
		}
		res := resp.Result()
		switch res.Outcome {
		case vouch.Passed, vouch.Failed, vouch.Skipped, vouch.Errored:
		default:
			t.Fatalf("outcome %q", res.Outcome)
		}
		if res.Reason == "" || len(resp.Reason) > MaxReasonBytes+len("…") || !utf8.ValidString(resp.Reason) {
			t.Fatalf("reason %q", resp.Reason)
		}
		if strings.IndexFunc(resp.Reason, unicode.IsControl) >= 0 {
			t.Fatalf("control character in reason %q", resp.Reason)
		}
	})
}
