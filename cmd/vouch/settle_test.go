package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vouch-project/vouch"
	"github.com/vouch-project/vouch/internal/testbed"
)

// TestFirstTrustedSignatureSettles: an image with 6 signatures from an
// untrusted signer and 6 from the trusted one, real Notary Project
// signatures. `vouch verify --notation-cert` allows it, like `notation
// verify`: the untrusted ones are not held against it, and verifying stops
// once a trusted one passed (the rest are skipped, not needed).
// --verify-all checks every one and comes to the same verdict.
func TestFirstTrustedSignatureSettles(t *testing.T) {
	for _, reg := range testbed.Both(t) {
		t.Run(reg.Name, func(t *testing.T) {
			trusted, rogue := testbed.NewNotationSigner(t), testbed.NewNotationSigner(t)
			p := testbed.NewPusher(t, reg.Host, "settle/app")
			img := p.Image("v1", "settle")
			for i := 0; i < 6; i++ {
				rogue.Sign(p, img)
				trusted.Sign(p, img)
			}
			unsigned := p.Image("rogue-only", "rogue only")
			rogue.Sign(p, unsigned)

			verify := func(extra ...string) (int, vouch.Report) {
				args := append([]string{"verify", "-o", "json", "--notation-cert", trusted.CAFile, "--plain-http", "--concurrency", "2"}, extra...)
				code, out, errOut := vouchRun(t, args...)
				var s struct {
					Reports []vouch.Report `json:"subjects"`
				}
				if err := json.Unmarshal([]byte(out), &s); err != nil || len(s.Reports) != 1 {
					t.Fatalf("exit %d, stderr %s, output %s", code, errOut, out)
				}
				return code, s.Reports[0]
			}
			count := func(r vouch.Report) map[string]int {
				n := map[string]int{}
				for _, c := range r.Root.Referrers {
					key := string(c.Outcome)
					if strings.Contains(c.Reason, "not needed") {
						key = "not needed"
					}
					n[key]++
				}
				return n
			}

			code, early := verify(reg.Host + "/settle/app:v1")
			got := count(early)
			if code != 0 || early.Verdict != vouch.Allowed || got["passed"] < 1 || got["not needed"] < 6 || got["passed"]+got["failed"]+got["not needed"] != 12 {
				t.Fatalf("exit %d, %s: %s; outcomes %v", code, early.Verdict, early.Reason, got)
			}
			code, all := verify("--verify-all", reg.Host+"/settle/app:v1")
			if got := count(all); code != 0 || all.Verdict != vouch.Allowed || got["passed"] != 6 || got["failed"] != 6 {
				t.Fatalf("--verify-all: exit %d, %s: %s; outcomes %v", code, all.Verdict, all.Reason, got)
			}
			code, denied := verify(reg.Host + "/settle/app:rogue-only")
			if code != 1 || !strings.Contains(denied.Reason, "failed") {
				t.Fatalf("rogue-only: exit %d, %s: %s", code, denied.Verdict, denied.Reason)
			}
			t.Logf("settling early: %v; --verify-all: %v", got, count(all))
		})
	}
}
